"""A viewport's GeoJSON written straight from the rows' text.

A viewer panning over a slide asks for up to 5,000 features a screen. Their geometries,
measurements and QuPath properties are stored as JSON text, so the answer splices that
text in as it is (orjson fragments): no parse and re-encode per feature, one query that
reads only the columns the answer shows, and the database (not Python) takes the QuPath
properties and the other members out of the ``properties`` column. What a feature
carries is :func:`~pixelmill.backends.metadata.annotation_records.feature_json`'s (the
contract suite checks the two agree).

NaN and Infinity: QuPath writes them and the standard library stores them, but they are
not JSON and SQLite's JSON functions refuse them; such a row's properties are read whole
(the statement returns them only then) and decoded here, so they leave as ``null``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

import orjson
import sqlalchemy as sa

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata.annotation_records import as_uuid, iso_utc

_A = tw.annotation_rows
_P = _A.c.properties
_Fragment = orjson.Fragment


def _text(column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[Any]:
    return sa.cast(column, sa.Text).label(name)


def _properties(sqlite: bool) -> list[sa.ColumnElement[Any]]:
    """The QuPath properties, the other members, and (only when the first two are
    NULL for it) the whole column, as text."""
    qupath, members = _P["qupath"], _P["members"]
    if not sqlite:  # PostgreSQL's json holds no NaN
        return [_text(qupath, "qupath"), _text(members, "members"), sa.null().label("raw")]
    valid = sa.func.json_valid(_P) == 1
    return [
        _text(sa.case((valid, qupath)), "qupath"),
        _text(sa.case((valid, members)), "members"),
        sa.case((valid, sa.null()), else_=sa.cast(_P, sa.Text)).label("raw"),
    ]


@cache
def viewport_select(*, sqlite: bool, classes: bool) -> sa.Select[Any]:
    """The viewport statement, built once, bound by name: ``image_id``, ``study_id``,
    the box (``x0``, ``x1``, ``y0``, ``y1``), ``limit`` and, with ``classes``, the
    ``classes`` to keep. On SQLite times are read as their stored text (no datetime is
    made per row). Uses ``ix_annotations_viewport``."""
    times = (_A.c.created_at, _A.c.updated_at)
    query = sa.select(
        _A.c.id, _A.c.version, _A.c.geom_type,
        _text(_A.c.geometry, "geometry"), *_properties(sqlite),
        _text(_A.c.measurements, "measurements"),
        _A.c.min_x, _A.c.min_y, _A.c.max_x, _A.c.max_y,
        _A.c.source, _A.c.analysis_id, _A.c.author_id, _A.c.updated_by,
        *(_text(c, c.key) if sqlite else c for c in times),
    ).where(
        _A.c.image_id == sa.bindparam("image_id"),
        _A.c.study_id == sa.bindparam("study_id"),
        _A.c.deleted_at.is_(None),
        _A.c.min_x <= sa.bindparam("x1"),
        _A.c.max_x >= sa.bindparam("x0"),
        _A.c.min_y <= sa.bindparam("y1"),
        _A.c.max_y >= sa.bindparam("y0"),
    )  # fmt: skip
    if classes:
        query = query.where(_A.c.class_name.in_(sa.bindparam("classes", expanding=True)))
    return query.limit(sa.bindparam("limit"))


def viewport_query(
    dialect: str,
    study_id: str,
    image_id: str,
    box: tuple[float, float, float, float],
    limit: int,
    classes: Sequence[str] | None,
) -> tuple[sa.Select[Any], dict[str, Any]]:
    """:func:`viewport_select` and its parameters for ``box`` = ``(x, y, w, h)``; it
    reads ``limit + 1`` rows (to tell whether more matched)."""
    x, y, w, h = box
    query = viewport_select(sqlite=dialect == "sqlite", classes=bool(classes))
    params: dict[str, Any] = {
        "image_id": image_id, "study_id": study_id, "x0": x, "x1": x + w,
        "y0": y, "y1": y + h, "limit": limit + 1,
    }  # fmt: skip
    if classes:
        params["classes"] = list(classes)
    return query, params


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN or Infinity
        return json.loads(text)


def _json(text: str | None) -> Any:
    """Stored JSON text as it goes out: as is, unless it holds NaN or Infinity."""
    if text is None or "NaN" in text or "Infinity" in text:
        return None if text is None else _loads(text)
    return _Fragment(text)


def _time(value: Any) -> Any:
    # SQLite's text, "YYYY-MM-DD HH:MM:SS.ffffff", as datetime.isoformat() writes it
    if isinstance(value, str) and len(value) == 26 and value[10] == " ":
        micro = value[19:] if value[20:] != "000000" else ""
        return f"{value[:10]}T{value[11:19]}{micro}+00:00"
    return iso_utc(value)


def feature_of(row: Sequence[Any], study_id: str, image_id: str) -> dict[str, Any]:
    """One feature of a row read with :func:`viewport_select`, for orjson to write."""
    (aid, version, shape, geometry, qupath, members, raw, measurements, x0, y0, x1, y1,
     source, analysis_id, author, updater, created, updated) = row  # fmt: skip
    if raw is not None:  # SQLite could not read the properties: decode them here
        whole = _loads(raw)
        qupath, members = whole.get("qupath"), whole.get("members")
    feature: dict[str, Any] = {
        "id": as_uuid(aid), "type": "Feature", "geometry": _Fragment(geometry),
    }  # fmt: skip
    if members and members != "{}" and members != "null":  # QuPath's nucleusGeometry...
        feature.update(_loads(members) if isinstance(members, str) else members)
    qupath = _json(qupath) if isinstance(qupath, str) else qupath
    feature["properties"] = {} if qupath is None else qupath
    feature["pixelmill"] = {
        "id": aid, "version": version, "study_id": study_id, "image_id": image_id,
        "shape": shape, "bbox": [x0, y0, x1, y1], "measurements": _json(measurements),
        "source": source, "analysis_id": analysis_id, "author_id": author,
        "created_at": _time(created), "updated_by": updater, "updated_at": _time(updated),
        "deleted_at": None,
    }  # fmt: skip
    return feature


def collection_json(features: list[dict[str, Any]], **members: Any) -> bytes:
    """A GeoJSON FeatureCollection of ``features`` with more top-level ``members``
    (``truncated``, ``next``), as the bytes of an answer."""
    return orjson.dumps({"type": "FeatureCollection", "features": features, **members})


__all__ = ["collection_json", "feature_of", "viewport_query", "viewport_select"]
