"""Job artifacts: tables and JSON that tasks produce, stored as objects and served,
per task or aggregated over a job, as JSON, CSV or Arrow.

Keys derive from job, task and name (``jobs/{job}/tasks/{index}/{name}.{ext}``), so a
task that runs twice overwrites its artifact instead of adding a second one.
Supported values: JSON-able data (dicts, lists of records, numbers, strings; numpy
scalars and arrays are converted), ``pyarrow.Table`` (stored as an Arrow IPC file) and
``bytes`` (stored as is, served per task only). pyarrow is imported only when used.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from pixelmill.backends.storage.base import Storage
from pixelmill.errors import Conflict, InvalidParameter, NotFound

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
ARROW = "application/vnd.apache.arrow.file"
Format = Literal["json", "csv", "arrow"]
MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8", "arrow": ARROW}
#: every media type an artifact is served as (bytes artifacts, e.g. label TIFFs, as
#: octet-stream), for the routes' OpenAPI
ARTIFACT_MEDIA = ("application/json", "text/csv", ARROW, "application/octet-stream")


@dataclass(frozen=True)
class Artifact:
    """Bytes ready to send, with their media type."""

    body: bytes
    media_type: str


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidParameter(
            f"artifact name {name!r} must be 1-100 letters, digits, '.', '_' or '-'"
        )
    return name


def _is_arrow(value: Any) -> bool:
    return type(value).__module__.startswith("pyarrow") and hasattr(value, "schema")


def store(storage: Storage, job_id: str, idx: int, name: str, value: Any) -> dict[str, Any]:
    """Store one artifact; returns its descriptor (kept in the task row)."""
    check_name(name)
    if _is_arrow(value):
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, value.schema) as writer:
            writer.write_table(value)
        body, kind, ext, media = sink.getvalue().to_pybytes(), "arrow", "arrow", ARROW
    elif isinstance(value, (bytes, bytearray, memoryview)):
        body, kind, ext, media = bytes(value), "bytes", "bin", "application/octet-stream"
    else:
        try:
            body = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError as exc:
            raise InvalidParameter(
                f"artifact {name!r} is neither JSON-able, an Arrow table nor bytes: {exc}"
            ) from None
        kind, ext, media = "json", "json", "application/json"
    key = f"jobs/{job_id}/tasks/{idx:06d}/{name}.{ext}"
    storage.put(key, body, content_type=media)
    return {"name": name, "key": key, "kind": kind, "media_type": media, "size": len(body)}


def state_key(job_id: str, idx: int, name: str) -> str:
    """Where a task's resumable state ``name`` lives (beside its artifacts)."""
    return f"jobs/{job_id}/tasks/{idx:06d}/state/{check_name(name)}.bin"


def _load(storage: Storage, meta: dict[str, Any]) -> Any:
    body = storage.get(meta["key"])
    if meta["kind"] == "json":
        return orjson.loads(body)
    if meta["kind"] == "arrow":
        import pyarrow as pa

        return pa.ipc.open_file(pa.BufferReader(body)).read_all()
    return body


def render(value: Any, kind: str, fmt: Format | None) -> Artifact:
    """``value`` (JSON data or an Arrow table) in the asked format (default JSON)."""
    fmt = fmt or "json"
    if kind == "bytes":
        if fmt not in (None, "json") and fmt != "bytes":
            raise InvalidParameter("binary artifacts are served as stored (omit 'format')")
        return Artifact(value, "application/octet-stream")
    if kind == "arrow":
        import pyarrow as pa

        table: Any = value
        if fmt == "arrow":
            sink = pa.BufferOutputStream()
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            return Artifact(sink.getvalue().to_pybytes(), ARROW)
        if fmt == "csv":
            import pyarrow.csv as pacsv

            out = pa.BufferOutputStream()
            pacsv.write_csv(table, out)
            return Artifact(out.getvalue().to_pybytes(), MEDIA["csv"])
        return Artifact(
            orjson.dumps(table.to_pylist(), default=str, option=orjson.OPT_SERIALIZE_NUMPY),
            MEDIA["json"],
        )
    if fmt == "json":
        return Artifact(orjson.dumps(value), MEDIA["json"])
    records = _as_records(value)
    if fmt == "csv":
        return Artifact(_csv(records).encode(), MEDIA["csv"])
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    table = pa.Table.from_pylist(records)
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return Artifact(sink.getvalue().to_pybytes(), ARROW)


def _as_records(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [{"value": v} for v in value]
    return [{"value": value}]


def _csv(records: Sequence[dict[str, Any]]) -> str:
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow(
            {
                k: orjson.dumps(v).decode() if isinstance(v, (dict, list)) else v
                for k, v in record.items()
            }
        )
    return out.getvalue()


def task_artifact(storage: Storage, artifacts: list[dict[str, Any]] | None, name: str) -> Any:
    """``(value, kind)`` of one task's artifact ``name``."""
    for meta in artifacts or []:
        if meta["name"] == name:
            return _load(storage, meta), meta["kind"]
    raise NotFound(f"no artifact {name!r}")


def aggregate(
    storage: Storage, tasks: Sequence[tuple[str | None, list[dict[str, Any]] | None]], name: str
) -> tuple[Any, str]:
    """Combine artifact ``name`` over the tasks ``(input image id, artifacts)`` of a job.

    One table, whatever the number of input images (one gives the same shape as
    many): records (or dicts) gain an ``image_id`` column, Arrow tables are concatenated
    with an ``image_id`` column, other JSON values become ``{"image_id", "value"}``
    records. A lone artifact of a task without an input image (training...) or a
    binary one is served as stored; several binary artifacts cannot be combined (409:
    fetch them per task).
    """
    found = [
        (image, meta) for image, metas in tasks for meta in metas or [] if meta["name"] == name
    ]
    if not found:
        raise NotFound(f"no artifact {name!r} in this job")
    if len(found) == 1 and (found[0][0] is None or found[0][1]["kind"] == "bytes"):
        return _load(storage, found[0][1]), found[0][1]["kind"]
    kinds = {meta["kind"] for _, meta in found}
    if "bytes" in kinds:
        raise Conflict(f"artifact {name!r} is binary; fetch it per task (.../tasks/N/results/)")
    if kinds == {"arrow"}:
        import pyarrow as pa

        tables = []
        for image, meta in found:
            table = _load(storage, meta)
            column = pa.array([image] * table.num_rows, type=pa.string())
            tables.append(table.append_column("image_id", column))
        return pa.concat_tables(tables, promote_options="permissive"), "arrow"
    records: list[dict[str, Any]] = []
    for image, meta in found:
        value = _load(storage, meta)
        if meta["kind"] == "arrow":
            value = value.to_pylist()
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            records.extend({"image_id": image, **v} for v in value)
        elif isinstance(value, dict):
            records.append({"image_id": image, **value})
        else:
            records.append({"image_id": image, "value": value})
    return records, "json"
