"""Checking and repairing one GeoJSON geometry of an annotation.

Coordinates are image pixels: ``x`` to the right (columns), ``y`` down (rows), origin at
the top-left corner of the full-resolution image, as QuPath writes them. A position's
third value (GeoJSON altitude) is dropped; everything else about a valid geometry is
kept exactly as given, so an import followed by an export changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelmill.errors import InvalidAnnotation

#: the GeoJSON geometry types an annotation may have
GEOMETRY_TYPES = ("Polygon", "MultiPolygon", "Point", "MultiPoint", "LineString")

#: nesting depth of ``coordinates`` above the positions, per type
_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "Polygon": 2, "MultiPolygon": 3}
#: nesting depth of ``coordinates`` above the arrays of positions, per type
_LIST_DEPTH = {"MultiPoint": 0, "LineString": 0, "Polygon": 1, "MultiPolygon": 2}


@dataclass(frozen=True)
class Limits:
    """What a geometry must satisfy.

    ``image_size`` is ``(width, height)`` in pixels; every position must lie inside
    ``[0, width] x [0, height]`` when it is given. ``repair`` closes open rings and makes
    invalid polygons valid (shapely ``make_valid``); without it both are refused.
    """

    max_vertices: int = 100_000
    image_size: tuple[int, int] | None = None
    repair: bool = True


def check_geometry(geometry: Any, limits: Limits, feature: int | None = None) -> dict[str, Any]:
    """A checked copy of ``geometry`` (a GeoJSON geometry mapping), repaired if allowed.

    Raises :class:`~pixelmill.errors.InvalidAnnotation` naming ``feature`` and the problem.
    """
    fail = Failer(feature)
    if not isinstance(geometry, Mapping):
        raise fail("the geometry is missing or not an object", "missing-geometry")
    kind = geometry.get("type")
    if kind not in GEOMETRY_TYPES:
        raise fail(
            f"geometry type {kind!r} is not one of {', '.join(GEOMETRY_TYPES)}",
            "unsupported-geometry",
        )
    tally = [0]
    raw = geometry.get("coordinates")
    if kind == "Point":
        points, _ = _run([raw], limits, fail, tally)
        coords: Any = points[0]
    else:
        coords, runs = _runs(raw, _LIST_DEPTH[kind], limits, fail, tally)
    if kind in ("Polygon", "MultiPolygon"):
        polygons = (
            list(zip(coords, runs, strict=True)) if kind == "MultiPolygon" else [(coords, runs)]
        )
        if not polygons:
            raise fail("a MultiPolygon needs at least one polygon", "empty-geometry")
        for rings, arrays in polygons:
            _check_rings(rings, arrays, limits, fail)
    elif kind == "LineString" and len(coords) < 2:
        raise fail("a LineString needs at least two positions", "degenerate-line")
    elif kind == "MultiPoint" and not coords:
        raise fail("a MultiPoint needs at least one position", "empty-geometry")
    checked: dict[str, Any] = {"type": kind, "coordinates": coords}
    if kind in ("Polygon", "MultiPolygon"):
        checked = _valid_polygonal(
            checked, runs if kind == "MultiPolygon" else [runs], limits, fail
        )
    # QuPath writes the z/t plane of an object next to its coordinates; keep it
    for key, value in geometry.items():
        if key not in ("type", "coordinates", "bbox"):
            checked[key] = value
    return checked


def bounds(geometry: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """``(min_x, min_y, max_x, max_y)`` of a checked geometry, in pixels."""
    xs: list[float] = []
    ys: list[float] = []
    for x, y in iter_positions(geometry):
        xs.append(x)
        ys.append(y)
    return min(xs), min(ys), max(xs), max(ys)


def iter_positions(geometry: Mapping[str, Any]) -> list[tuple[float, float]]:
    """Every ``(x, y)`` of a checked geometry (closing positions of rings included)."""
    out: list[tuple[float, float]] = []

    def walk(node: Any, depth: int) -> None:
        if depth == 0:
            out.append((node[0], node[1]))
            return
        for child in node:
            walk(child, depth - 1)

    walk(geometry["coordinates"], _DEPTH[geometry["type"]])
    return out


class Failer:
    """Makes the :class:`InvalidAnnotation` of one feature."""

    def __init__(self, feature: int | None) -> None:
        self.feature = feature

    def __call__(self, detail: str, problem: str, **extra: Any) -> InvalidAnnotation:
        if self.feature is None:
            return InvalidAnnotation(detail, problem=problem, **extra)
        return InvalidAnnotation(
            f"feature {self.feature}: {detail}", feature=self.feature, problem=problem, **extra
        )


def _runs(node: Any, depth: int, limits: Limits, fail: Failer, tally: list[int]) -> tuple[Any, Any]:
    """``node`` as nested lists of checked position lists, and the same nesting of their
    ``(n, 2)`` float arrays."""
    if depth == 0:
        return _run(node, limits, fail, tally)
    if not isinstance(node, Sequence) or isinstance(node, str | bytes):
        raise fail("coordinates are not nested arrays of the geometry's type", "bad-coordinates")
    pairs = [_runs(child, depth - 1, limits, fail, tally) for child in node]
    return [c for c, _ in pairs], [a for _, a in pairs]


def _run(
    node: Any, limits: Limits, fail: Failer, tally: list[int]
) -> tuple[list[list[float]], np.ndarray]:
    """A checked list of positions (as ``[x, y]`` lists, z dropped) and its array."""
    bad = "positions must be arrays of 2 (or 3) numbers"
    if not isinstance(node, Sequence) or isinstance(node, str | bytes):
        raise fail(bad, "bad-coordinates")
    if not node:
        return [], np.zeros((0, 2))
    try:
        arr = np.asarray(node)
    except (ValueError, TypeError) as exc:  # ragged
        raise fail(bad, "bad-coordinates") from exc
    if arr.dtype.kind not in "iuf" or arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise fail(bad, "bad-coordinates")
    xy = arr[:, :2].astype(np.float64)
    if not np.isfinite(xy).all():
        raise fail("coordinates must be finite numbers", "non-finite")
    tally[0] += len(xy)
    if tally[0] > limits.max_vertices:
        raise fail(
            f"more than {limits.max_vertices} vertices",
            "too-many-vertices",
            max_vertices=limits.max_vertices,
        )
    if limits.image_size is not None:
        width, height = limits.image_size
        outside = (xy[:, 0] < 0) | (xy[:, 0] > width) | (xy[:, 1] < 0) | (xy[:, 1] > height)
        if outside.any():
            x, y = node[int(np.argmax(outside))][:2]
            raise fail(
                f"position ({x}, {y}) is outside the {width}x{height} image",
                "out-of-bounds",
                width=width,
                height=height,
            )
    return arr[:, :2].tolist(), xy


def _check_rings(
    rings: list[list[list[float]]], arrays: list[np.ndarray], limits: Limits, fail: Failer
) -> None:
    if not rings:
        raise fail("a polygon needs an exterior ring", "empty-geometry")
    for i, ring in enumerate(rings):
        if ring and ring[0] != ring[-1]:
            if not limits.repair:
                raise fail("a polygon ring is not closed (last position != first)", "unclosed-ring")
            ring.append(list(ring[0]))
            arrays[i] = np.vstack([arrays[i], arrays[i][:1]])
        if len(ring) < 4:
            raise fail("a polygon ring needs at least 4 positions (3 corners)", "degenerate-ring")


def _valid_polygonal(
    geometry: dict[str, Any], polygons: list[list[np.ndarray]], limits: Limits, fail: Failer
) -> dict[str, Any]:
    """``geometry`` unchanged when valid; repaired with ``make_valid`` or refused."""
    import shapely
    from shapely.geometry import MultiPolygon, Polygon, mapping

    parts = [Polygon(rings[0], rings[1:]) for rings in polygons]
    shp = parts[0] if geometry["type"] == "Polygon" else MultiPolygon(parts)
    if shp.is_valid:
        return geometry
    reason = shapely.is_valid_reason(shp)
    if not limits.repair:
        raise fail(f"invalid polygon: {reason}", "invalid-polygon", reason=reason)
    fixed = shapely.make_valid(shp, method="structure", keep_collapsed=False)
    areas = [g for g in shapely.get_parts(fixed) if g.geom_type in ("Polygon", "MultiPolygon")]
    polygonal = shapely.union_all(areas) if areas else None
    if polygonal is None or polygonal.is_empty or polygonal.area == 0:
        raise fail(f"invalid polygon with no area left after repair: {reason}", "invalid-polygon")
    return _as_lists(mapping(polygonal))


def _as_lists(node: Any) -> Any:
    """shapely's ``mapping`` gives tuples; GeoJSON (and equality with parsed JSON) lists."""
    if isinstance(node, Mapping):
        return {k: _as_lists(v) for k, v in node.items()}
    if isinstance(node, tuple | list):
        return [_as_lists(v) for v in node]
    return node


__all__ = ["GEOMETRY_TYPES", "Limits", "bounds", "check_geometry", "iter_positions"]
