"""Records of annotations and their versions, and the columns an
:class:`~pixelmill.imaging.annotations.Annotation` fills (see
:mod:`pixelmill.backends.metadata.annotations`).

Column ``properties`` holds ``{"qupath": the feature's properties, "members": its other
members}`` (QuPath's ``nucleusGeometry``...), so a feature leaves as it came in;
``measurements`` holds the measurements computed from the geometry (µm with a pixel
size); QuPath's own measurements stay in ``properties.qupath.measurements``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._time import utc
from pixelmill.errors import InvalidAnnotation, PreconditionFailed
from pixelmill.imaging.annotations import Annotation, geometry_measurements, to_feature


@dataclass(frozen=True)
class AnnotationRecord:
    id: str
    study_id: str
    image_id: str
    version: int
    geom_type: str
    geometry: dict[str, Any]
    object_type: str
    class_name: str | None
    color: list[int] | None
    name: str | None
    properties: dict[str, Any]
    measurements: dict[str, Any]
    min_x: float
    min_y: float
    max_x: float
    max_y: float
    source: str
    analysis_id: str | None
    author_id: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    deleted_at: datetime | None

    def snapshot(self) -> dict[str, Any]:
        """The feature without its id, as a version stores it."""
        return snapshot_of(self.geometry, self.properties)

    def feature(self) -> dict[str, Any]:
        """The QuPath-compatible GeoJSON feature (its id: this annotation's, as a UUID)."""
        return {"id": as_uuid(self.id), **self.snapshot()}

    def to_json(self) -> dict[str, Any]:
        """The feature with a ``pixelmill`` member: version, shape, measurements, who, when."""
        return feature_json(row_dict(self))


def snapshot_of(geometry: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    feature: dict[str, Any] = {"type": "Feature", "geometry": geometry}
    feature.update(properties.get("members") or {})
    feature["properties"] = properties.get("qupath") or {}
    return feature


def as_uuid(hex32: str) -> str:
    """An annotation id (32 hex digits) in the UUID form QuPath wants."""
    h = hex32
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso_utc(value: datetime | str | None) -> str | None:
    """A stored time as ISO 8601 with its zone (``+00:00``), as ``datetime.isoformat``
    writes it; SQLite's stored text is rewritten without parsing a datetime."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite's stored text, UTC: "YYYY-MM-DD HH:MM:SS.ffffff"
        clock, _, micro = value[11:].partition(".")
        fraction = f".{micro.ljust(6, '0')[:6]}" if micro.strip("0") else ""
        return f"{value[:10]}T{clock}{fraction}+00:00"  # as datetime.isoformat() writes
    # SQLite hands back naive datetimes; every stored time is UTC
    return value.isoformat() + "+00:00" if value.tzinfo is None else value.isoformat()


def feature_json(row: dict[str, Any]) -> dict[str, Any]:
    """The API's feature of a row (JSON columns decoded; times aware or naive UTC):
    the QuPath feature and a ``pixelmill`` member. Built straight from rows by the
    viewport query, which skips records."""
    body = {"id": as_uuid(row["id"]), **snapshot_of(row["geometry"], row["properties"])}
    body["pixelmill"] = {
        "id": row["id"],
        "version": row["version"],
        "study_id": row["study_id"],
        "image_id": row["image_id"],
        "shape": row["geom_type"],
        "bbox": [row["min_x"], row["min_y"], row["max_x"], row["max_y"]],
        "measurements": row["measurements"],
        "source": row["source"],
        "analysis_id": row["analysis_id"],
        "author_id": row["author_id"],
        "created_at": iso_utc(row["created_at"]),
        "updated_by": row["updated_by"],
        "updated_at": iso_utc(row["updated_at"]),
        "deleted_at": iso_utc(row["deleted_at"]),
    }
    return body


@dataclass(frozen=True)
class VersionRecord:
    annotation_id: str
    version: int
    op: str
    snapshot: dict[str, Any]
    author_id: str
    created_at: datetime

    def to_json(self, *, with_snapshot: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "version": self.version,
            "op": self.op,
            "author_id": self.author_id,
            "created_at": self.created_at.isoformat(),
        }
        if with_snapshot:
            body["snapshot"] = self.snapshot
        return body


TIMES = ("created_at", "updated_at", "deleted_at")
COLUMNS = [f.name for f in fields(AnnotationRecord)]


#: JSON columns, read as text and decoded here with orjson (3-4x the standard library's
#: speed, which SQLAlchemy's JSON type uses): the viewport query decodes four per row
JSON_COLUMNS = ("geometry", "color", "properties", "measurements")
#: what reads select: every column, JSON ones cast to text (so no driver decodes
#: them with the standard library first; :func:`record_of_row` takes objects too)
SELECT = sa.select(
    *[
        sa.cast(c, sa.Text).label(c.name) if c.name in JSON_COLUMNS else c
        for c in tw.annotation_rows.c
    ]
)

_KEYS = tuple(c.name for c in tw.annotation_rows.c)


_TEXT = (str, bytes)


def _loads(value: Any) -> Any:
    if value is None or not isinstance(value, _TEXT):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:  # NaN or Infinity, which orjson refuses
        return json.loads(value)


_JSON_AT = tuple(_KEYS.index(name) for name in JSON_COLUMNS)


def row_values(row: Any) -> dict[str, Any]:
    """A row read with :data:`SELECT` as a dict, JSON columns decoded."""
    values = list(row)
    for i in _JSON_AT:
        values[i] = _loads(values[i])
    return dict(zip(_KEYS, values, strict=True))


def record_of_row(row: Any) -> AnnotationRecord:
    """A record of a row read with :data:`SELECT`."""
    data = row_values(row)
    for name in TIMES:
        value = data[name]
        if value is not None and value.tzinfo is None:
            data[name] = utc(value)
    return AnnotationRecord(**data)


def values_of(annotation: Annotation, pixel_size_um: float | None) -> dict[str, Any]:
    """The columns an annotation fills (measurements computed here)."""
    if annotation.class_name is not None and len(annotation.class_name) > 100:
        raise InvalidAnnotation("a class name is at most 100 characters", problem="bad-class")
    if annotation.name is not None and len(annotation.name) > 200:
        raise InvalidAnnotation("a name is at most 200 characters", problem="bad-name")
    feature = to_feature(annotation)
    for key in ("type", "id", "geometry"):
        feature.pop(key)
    props = feature.pop("properties")
    min_x, min_y, max_x, max_y = annotation.bbox
    return {
        "geom_type": annotation.shape,
        "geometry": annotation.geometry,
        "object_type": annotation.object_type,
        "class_name": annotation.class_name,
        "color": list(annotation.color) if annotation.color else None,
        "name": annotation.name,
        "properties": {"qupath": props, "members": feature},
        "measurements": geometry_measurements(annotation, pixel_size_um=pixel_size_um),
        "min_x": min_x,
        "min_y": min_y,
        "max_x": max_x,
        "max_y": max_y,
    }


def summary(values: dict[str, Any], version: int, op: str) -> dict[str, Any]:
    return {
        "version": version,
        "op": op,
        "shape": values["geom_type"],
        "class_name": values["class_name"],
        "name": values["name"],
    }


VALUE_COLUMNS = (
    "geom_type",
    "geometry",
    "object_type",
    "class_name",
    "color",
    "name",
    "properties",
    "measurements",
    "min_x",
    "min_y",
    "max_x",
    "max_y",
)


def row_dict(record: AnnotationRecord) -> dict[str, Any]:
    return {f: getattr(record, f) for f in COLUMNS}


def record_of(row: dict[str, Any]) -> AnnotationRecord:
    return AnnotationRecord(**{k: row[k] for k in COLUMNS})


def version_record(row: Any) -> VersionRecord:
    data = dict(row._mapping)
    data["created_at"] = utc(data["created_at"])
    return VersionRecord(**data)


def stale(current: AnnotationRecord) -> PreconditionFailed:
    return PreconditionFailed(
        f"annotation {current.id!r} is at version {current.version}: read it again and "
        "re-apply your change",
        current_version=current.version,
        current_etag=f'"v{current.version}"',
    )


__all__ = [
    "JSON_COLUMNS",
    "SELECT",
    "VALUE_COLUMNS",
    "AnnotationRecord",
    "VersionRecord",
    "as_uuid",
    "feature_json",
    "iso_utc",
    "record_of",
    "record_of_row",
    "row_dict",
    "row_values",
    "stale",
    "summary",
    "values_of",
    "version_record",
]
