"""Study exports: per-object measurements of the study's finished analyses, joined with
each image's attributes and its patient's (pseudonymous code and allow-listed
attributes only), as CSV or Parquet. The µm columns are computed at export from the
pixel columns and the pixel size the row shows (the study's, else the file's), so they
follow a pixel size set or changed after the analysis ran. pyarrow is imported only
here, when used."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from pixelmill.backends.metadata.patients import image_attributes
from pixelmill.errors import NotFound

if TYPE_CHECKING:
    import pyarrow as pa

    from pixelmill.backends.metadata.database import Database
    from pixelmill.services.workspace.analyses import Analyses

log = logging.getLogger("pixelmill.exports")

ExportFormat = Literal["csv", "parquet"]
MEDIA: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
#: the columns each object row gains, in order, before its measurements
CONTEXT = (
    "analysis_id",
    "analysis",
    "image_id",
    "display_name",
    "stain",
    "magnification",
    "pixel_size_um",
    "patient_code",
    "sex",
    "age_band",
    "diagnosis",
    "arm",
)
_TYPES = {"magnification": "float64", "pixel_size_um": "float64"}


class Exports:
    def __init__(self, db: Database, analyses: Analyses) -> None:
        self.db = db
        self.analyses = analyses

    def measurements(self, study_id: str, missing: list[str] | None = None) -> pa.Table:
        """One row per object of every finished analysis of the study. An image whose
        results are gone (its job deleted before analyses held their jobs against
        retention) is left out, not the whole export: ``missing`` gets its
        ``{analysis_id}/{image_id}``."""
        import pyarrow as pa

        self._refresh(study_id)
        attributes = image_attributes(self.db, study_id)
        tables: list[pa.Table] = []
        for record in self.analyses.repo.finished_for_study(study_id):
            for image_id, entry in record.summary.get("images", {}).items():
                if entry.get("state") != "succeeded" or "objects" not in entry.get("artifacts", []):
                    continue
                try:
                    found = self.analyses.artifact(record, image_id, "objects", "arrow")
                except NotFound:
                    log.warning("analysis %s lost the objects of image %s", record.id, image_id)
                    if missing is not None:
                        missing.append(f"{record.id}/{image_id}")
                    continue
                objects = _arrow(found.body)
                context = {
                    "analysis_id": record.id,
                    "analysis": record.target,
                    "image_id": image_id,
                    **{
                        k: v for k, v in (attributes.get(image_id) or {}).items() if k != "image_id"
                    },
                }
                tables.append(_with_context(objects, context))
        if not tables:
            return pa.table(
                {name: pa.array([], type=_TYPES.get(name, "string")) for name in CONTEXT}
            )
        return pa.concat_tables(tables, promote_options="permissive")

    def _refresh(self, study_id: str) -> None:
        offset = 0
        while True:
            page, total = self.analyses.repo.page(study_id, limit=200, offset=offset)
            for record in page:
                self.analyses.refresh(record)
            offset += len(page)
            if not page or offset >= total:
                return


def encode(table: pa.Table, fmt: ExportFormat) -> bytes:
    """The table as CSV (with a header) or Parquet (zstd)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    if fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, sink)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def _arrow(body: bytes) -> pa.Table:
    import pyarrow as pa

    return pa.ipc.open_file(pa.BufferReader(body)).read_all()


def _in_um(objects: pa.Table, pixel_size_um: float | None) -> pa.Table:
    """The object table with each ``X_um``/``X_um2`` column that has an ``X_px`` one
    computed from it at ``pixel_size_um`` (the study's, which the export shows: the
    analysis measured with the image file's, if any, and a pixel size set later would
    leave them stale or empty). Unchanged without a pixel size."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pixel_size_um is None:
        return objects
    names = objects.column_names
    for i, name in enumerate(names):
        base, power = (name[:-4], 2) if name.endswith("_um2") else (name[:-3], 1)
        if not name.endswith(("_um", "_um2")) or f"{base}_px" not in names:
            continue
        px = pc.cast(objects.column(f"{base}_px"), pa.float64())
        objects = objects.set_column(i, name, pc.multiply(px, pixel_size_um**power))
    return objects


def _with_context(objects: pa.Table, context: dict[str, Any]) -> pa.Table:
    import pyarrow as pa

    objects = _in_um(objects, context.get("pixel_size_um"))
    n = objects.num_rows
    columns = [
        pa.array([context.get(name)] * n, type=_TYPES.get(name, "string")) for name in CONTEXT
    ]
    measured = [objects.column(i) for i in range(objects.num_columns)]
    names = list(CONTEXT) + [f for f in objects.column_names if f not in CONTEXT]
    kept = [c for f, c in zip(objects.column_names, measured, strict=True) if f not in CONTEXT]
    return pa.table(columns + kept, names=names)
