"""Exporters: measurement tables and summaries as bytes (no files written here).

CSV (RFC 4180, header row, nulls as empty fields), Parquet (zstd, with the summary and
units in the file's key-value metadata), JSON summary (UTF-8, sorted keys, NaN → null),
and label images as TIFF (uint16/uint32, deflate).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

#: media types of the exported formats
MEDIA_TYPES = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "json": "application/json",
    "tiff": "image/tiff",
}


def table_from_records(records: list[dict[str, Any]]) -> pa.Table:
    """A pyarrow Table from a list of row dicts (the other artifact shape)."""
    import pyarrow as pa

    return pa.Table.from_pylist(records)


def _as_table(table: pa.Table | list[dict[str, Any]]) -> pa.Table:
    return table_from_records(table) if isinstance(table, list) else table


def to_csv(table: pa.Table | list[dict[str, Any]]) -> bytes:
    """CSV bytes of an objects table; nulls are empty fields.

    Examples
    --------
    >>> to_csv([{"label": 1, "area_um2": None}]).decode().splitlines()
    ['"label","area_um2"', '1,']
    """
    import pyarrow.csv as pacsv

    sink = io.BytesIO()
    pacsv.write_csv(_as_table(table), sink)
    return sink.getvalue()


def to_parquet(
    table: pa.Table | list[dict[str, Any]], *, metadata: Mapping[str, Any] | None = None
) -> bytes:
    """Parquet bytes (zstd); ``metadata`` (e.g. the summary) is stored as JSON under the
    file metadata key ``pixelmill``."""
    import pyarrow.parquet as pq

    tbl = _as_table(table)
    if metadata is not None:
        meta = dict(tbl.schema.metadata or {})
        meta[b"pixelmill"] = to_json(metadata)
        tbl = tbl.replace_schema_metadata(meta)
    sink = io.BytesIO()
    pq.write_table(tbl, sink, compression="zstd")
    return sink.getvalue()


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(summary: Mapping[str, Any]) -> bytes:
    """UTF-8 JSON of a summary; NaN/inf become null, numpy scalars plain numbers.

    Examples
    --------
    >>> to_json({"count": np.int64(3), "x": float("nan")})
    b'{"count":3,"x":null}'
    """
    return json.dumps(_clean(summary), sort_keys=True, separators=(",", ":")).encode()


def labels_to_tiff(labels: np.ndarray) -> bytes:
    """A label image as TIFF bytes (its own dtype, uint16 or uint32; deflate)."""
    import tifffile

    sink = io.BytesIO()
    tifffile.imwrite(sink, labels, compression="zlib", photometric="minisblack")
    return sink.getvalue()


def labels_from_tiff(data: bytes) -> np.ndarray:
    """The label array back from :func:`labels_to_tiff` bytes."""
    import tifffile

    return np.asarray(tifffile.imread(io.BytesIO(data)))


__all__ = [
    "MEDIA_TYPES",
    "labels_from_tiff",
    "labels_to_tiff",
    "table_from_records",
    "to_csv",
    "to_json",
    "to_parquet",
]
