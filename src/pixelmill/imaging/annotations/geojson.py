"""GeoJSON annotations in and out, as QuPath reads and writes them.

Import takes a ``FeatureCollection``, one ``Feature``, a JSON array of features (QuPath
0.2 exports) or a bare geometry. Each feature becomes an :class:`Annotation`:

==================================  ==============================================
QuPath ``properties``               :class:`Annotation` field
==================================  ==============================================
``objectType``                      ``object_type`` (annotation, detection, cell,
                                    tile; QuPath 0.2's feature ``id``
                                    ``PathCellObject``... as a fallback)
``classification.name`` / ``names``  ``class_name`` (``names`` joined with ": ")
``classification.color`` [r, g, b]  ``color``; legacy ``colorRGB`` (packed ARGB int)
``name``, ``isLocked``              ``name``, ``is_locked``
``measurements`` (map or list)      ``measurements`` {name: float or None}
anything else                       ``properties``, kept verbatim
==================================  ==============================================

Other members of a feature (QuPath's ``nucleusGeometry`` of a cell, an area: a
``Polygon`` or ``MultiPolygon``) are kept in ``extra``, at most :data:`MAX_MEMBERS` of
them; ``pixelmill`` is the server's (the record it adds to a feature it answers with)
and is dropped from input, so a feature written back as it was read is the same
content. No value may nest deeper than :data:`MAX_DEPTH` levels (the feature itself is
level 1; QuPath's deepest, a ``MultiPolygon`` position, is level 6).

A ``Polygon`` marked ``shape`` (or ``roiType``) ``"rectangle"`` must be an axis-aligned
rectangle and has ``shape == "rectangle"``.

Export writes a ``FeatureCollection`` QuPath imports: each feature has ``"type":
"Feature"``, a UUID ``id``, its geometry, and ``properties.objectType`` and
``properties.classification {name, color}``.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from pixelmill.errors import InvalidAnnotation
from pixelmill.imaging.annotations._geometry import Failer, Limits, bounds, check_geometry

OBJECT_TYPES = ("annotation", "detection", "cell", "tile")
#: QuPath 0.2 named the object class in the feature's ``id``
_LEGACY_IDS = {
    "PathAnnotationObject": "annotation",
    "PathDetectionObject": "detection",
    "PathCellObject": "cell",
    "PathTileObject": "tile",
}
_SHAPES = {
    "Polygon": "polygon",
    "MultiPolygon": "multipolygon",
    "Point": "point",
    "MultiPoint": "multipoint",
    "LineString": "line",
}
#: properties read into fields of :class:`Annotation` (the rest are kept as they are)
_KNOWN = frozenset(
    {"objectType", "classification", "name", "isLocked", "measurements", "shape", "roiType"}
)
#: feature members that are geometries and checked like ``geometry``: areas
_GEOMETRY_MEMBERS = ("nucleusGeometry",)
_AREAS = ("Polygon", "MultiPolygon")
#: feature members read into fields, or the server's own (dropped from input)
_RESERVED = frozenset({"type", "id", "geometry", "properties", "bbox", "pixelmill"})
#: how deep a feature may nest, counting the feature itself as level 1: QuPath needs 6
#: (a MultiPolygon position); JSON encoders and PostgreSQL give up in the hundreds
MAX_DEPTH = 64
#: members of a feature besides type, id, geometry, properties and bbox
MAX_MEMBERS = 32

Color = tuple[int, int, int]


@dataclass(frozen=True)
class Annotation:
    """One annotation (or detection, cell, tile) of an image.

    ``geometry`` is a checked GeoJSON geometry in full-resolution pixels. ``shape`` is
    ``polygon``, ``multipolygon``, ``rectangle``, ``point``, ``multipoint`` or ``line``.
    """

    geometry: dict[str, Any]
    shape: str
    object_type: str = "annotation"
    class_name: str | None = None
    color: Color | None = None
    name: str | None = None
    is_locked: bool = False
    measurements: dict[str, float | None] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(min_x, min_y, max_x, max_y)`` in pixels."""
        return bounds(self.geometry)


def parse_geojson(
    data: bytes | str | Mapping[str, Any] | Sequence[Any],
    *,
    image_size: tuple[int, int] | None = None,
    max_vertices: int = 100_000,
    max_features: int = 500_000,
    repair: bool = True,
) -> list[Annotation]:
    """Every annotation in ``data`` (JSON text or already parsed), checked.

    ``image_size`` is ``(width, height)``: positions outside it are refused.
    ``max_vertices`` caps the vertices of one feature, ``max_features`` the features.
    With ``repair`` open rings are closed and invalid polygons made valid; without it
    they are refused. Raises :class:`~pixelmill.errors.InvalidAnnotation`.
    """
    doc = _load(data) if isinstance(data, bytes | str) else data
    features = _features(doc)
    if len(features) > max_features:
        raise InvalidAnnotation(
            f"{len(features)} features exceed the limit of {max_features}",
            problem="too-many-features",
            max_features=max_features,
        )
    limits = Limits(max_vertices=max_vertices, image_size=image_size, repair=repair)
    return [parse_feature(f, limits, index=i) for i, f in enumerate(features)]


def parse_feature(feature: Any, limits: Limits, *, index: int | None = None) -> Annotation:
    """One GeoJSON ``Feature`` as an :class:`Annotation` (see the module docstring)."""
    fail = Failer(index)
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise fail('not a GeoJSON Feature (an object with "type": "Feature")', "not-a-feature")
    check_depth(feature, index=index)
    props = feature.get("properties") or {}
    if not isinstance(props, Mapping):
        raise fail("properties must be an object", "bad-properties")
    geometry = check_geometry(feature.get("geometry"), limits, index)
    raw_id = feature.get("id")
    object_type = props.get("objectType") or _LEGACY_IDS.get(str(raw_id), "annotation")
    if object_type not in OBJECT_TYPES:
        raise fail(
            f"objectType {object_type!r} is not one of {', '.join(OBJECT_TYPES)}", "bad-object-type"
        )
    class_name, color = _classification(props.get("classification"), fail)
    name = props.get("name")
    if name is not None and not isinstance(name, str):
        raise fail("name must be a string", "bad-name")
    locked = props.get("isLocked", False)
    if not isinstance(locked, bool):
        raise fail("isLocked must be true or false", "bad-locked")
    return Annotation(
        geometry=geometry,
        shape=_shape(geometry, props, fail),
        object_type=object_type,
        class_name=class_name,
        color=color,
        name=name,
        is_locked=locked,
        measurements=_measurements(props.get("measurements"), fail),
        properties={k: _finite(v) for k, v in props.items() if k not in _KNOWN},
        extra=_members(feature, limits, fail),
        id=str(raw_id) if raw_id is not None and str(raw_id) not in _LEGACY_IDS else None,
    )


def check_depth(value: Any, *, index: int | None = None) -> None:
    """Refuse ``value`` (a feature, or a merge patch of one) when it nests deeper than
    :data:`MAX_DEPTH` levels. Iterative: no recursion to run out of. Its geometries'
    coordinates are ``check_geometry``'s: it takes them apart only as deep as their type."""
    if isinstance(value, Mapping):
        value = {
            k: _no_coordinates(v) if k in ("geometry", *_GEOMETRY_MEMBERS) else v
            for k, v in value.items()
        }
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, Mapping | list) else []
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, Mapping) else node
        nested = [c for c in children if isinstance(c, Mapping | list)]
        if nested and depth >= MAX_DEPTH:
            raise Failer(index)(
                f"nested deeper than {MAX_DEPTH} levels (objects and arrays)",
                "too-deep",
                max_depth=MAX_DEPTH,
            )
        stack.extend((c, depth + 1) for c in nested)


def _no_coordinates(geometry: Any) -> Any:
    if isinstance(geometry, Mapping):
        return {k: v for k, v in geometry.items() if k != "coordinates"}
    return geometry


def _members(feature: Mapping[str, Any], limits: Limits, fail: Failer) -> dict[str, Any]:
    """The feature's other members (``nucleusGeometry`` checked as an area)."""
    keys = [key for key in feature if key not in _RESERVED]
    if len(keys) > MAX_MEMBERS:
        raise fail(
            f"{len(keys)} members besides type, id, geometry and properties exceed the "
            f"limit of {MAX_MEMBERS}",
            "too-many-members",
            max_members=MAX_MEMBERS,
        )
    extra: dict[str, Any] = {}
    for key in keys:
        value = feature[key]
        if key not in _GEOMETRY_MEMBERS:
            extra[key] = _finite(value)
            continue
        kind = value.get("type") if isinstance(value, Mapping) else None
        if kind not in _AREAS:
            raise fail(
                f"{key} must be a Polygon or MultiPolygon, not {kind!r}", "bad-nucleus-geometry"
            )
        extra[key] = check_geometry(value, limits, fail.feature)
    return extra


def to_feature(annotation: Annotation) -> dict[str, Any]:
    """``annotation`` as a QuPath-compatible GeoJSON ``Feature``; its ``id`` is kept when
    it is a UUID, else a new random UUID is given (QuPath requires one)."""
    props: dict[str, Any] = {"objectType": annotation.object_type}
    if annotation.name is not None:
        props["name"] = annotation.name
    if annotation.class_name is not None:
        classification: dict[str, Any] = {"name": annotation.class_name}
        if annotation.color is not None:
            classification["color"] = list(annotation.color)
        props["classification"] = classification
    if annotation.is_locked:
        props["isLocked"] = True
    if annotation.measurements:
        props["measurements"] = dict(annotation.measurements)
    if annotation.shape == "rectangle":
        props["shape"] = "rectangle"
    props.update(annotation.properties)
    feature: dict[str, Any] = {
        "type": "Feature",
        "id": _uuid(annotation.id),
        "geometry": annotation.geometry,
    }
    feature.update(annotation.extra)
    feature["properties"] = props
    return feature


def to_feature_collection(annotations: Iterable[Annotation]) -> dict[str, Any]:
    """A GeoJSON ``FeatureCollection`` of ``annotations`` that QuPath imports."""
    return {"type": "FeatureCollection", "features": [to_feature(a) for a in annotations]}


def _load(data: bytes | str) -> Any:
    # the standard library's parser: QuPath writes NaN measurements, which orjson refuses
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidAnnotation(f"not valid JSON: {exc}", problem="bad-json") from exc


def _features(doc: Any) -> list[Any]:
    if isinstance(doc, Sequence) and not isinstance(doc, str | bytes):
        return list(doc)
    if not isinstance(doc, Mapping):
        raise InvalidAnnotation("GeoJSON must be an object or an array", problem="not-geojson")
    kind = doc.get("type")
    if kind == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise InvalidAnnotation(
                "a FeatureCollection needs a features array", problem="not-geojson"
            )
        return features
    if kind == "Feature":
        return [doc]
    if isinstance(kind, str) and "coordinates" in doc:
        return [{"type": "Feature", "geometry": doc, "properties": {}}]
    raise InvalidAnnotation(
        f"GeoJSON type {kind!r} is not a FeatureCollection, Feature or geometry",
        problem="not-geojson",
    )


def _classification(value: Any, fail: Failer) -> tuple[str | None, Color | None]:
    if value is None:
        return None, None
    if isinstance(value, str):
        return value, None
    if not isinstance(value, Mapping):
        raise fail("classification must be an object with a name", "bad-classification")
    name = value.get("name")
    names = value.get("names")
    if name is None and isinstance(names, list) and all(isinstance(n, str) for n in names):
        name = ": ".join(names)
    if name is not None and not isinstance(name, str):
        raise fail("classification name must be a string", "bad-classification")
    return name, _color(value, fail)


def _color(value: Mapping[str, Any], fail: Failer) -> Color | None:
    color = value.get("color")
    if color is not None:
        if (
            not isinstance(color, list)
            or len(color) != 3
            or not all(
                isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color
            )
        ):
            raise fail("classification color must be [r, g, b] integers 0..255", "bad-color")
        return (color[0], color[1], color[2])
    packed = value.get("colorRGB")
    if packed is None:
        return None
    if not isinstance(packed, int) or isinstance(packed, bool):
        raise fail("classification colorRGB must be an integer", "bad-color")
    # a Java int: packed (alpha,) red, green, blue, often negative because of the alpha
    packed &= 0xFFFFFFFF
    return ((packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF)


def _measurements(value: Any, fail: Failer) -> dict[str, float | None]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, list):  # QuPath 0.2: [{"name": ..., "value": ...}, ...]
        if not all(isinstance(m, Mapping) and "name" in m for m in value):
            raise fail("measurements must be {name: value} or [{name, value}]", "bad-measurements")
        items = [(m["name"], m.get("value")) for m in value]
    else:
        raise fail("measurements must be {name: value} or [{name, value}]", "bad-measurements")
    out: dict[str, float | None] = {}
    for key, number in items:
        if not isinstance(key, str) or not (
            number is None or (isinstance(number, int | float) and not isinstance(number, bool))
        ):
            raise fail(f"measurement {key!r} must be a number or null", "bad-measurements")
        # NaN and infinities are not JSON: an unknown value is null
        out[key] = None if number is None or not math.isfinite(number) else number
    return out


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities (which QuPath writes) as null: they are not JSON,
    and PostgreSQL's json refuses them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _shape(geometry: Mapping[str, Any], props: Mapping[str, Any], fail: Failer) -> str:
    marker = props.get("shape", props.get("roiType"))
    if not (isinstance(marker, str) and marker.lower() == "rectangle"):
        return _SHAPES[geometry["type"]]
    rings = geometry["coordinates"] if geometry["type"] == "Polygon" else None
    if not rings or len(rings) != 1 or not _is_rectangle(rings[0]):
        raise fail("a rectangle must be a Polygon of 4 axis-aligned corners", "bad-rectangle")
    return "rectangle"


def _is_rectangle(ring: list[list[float]]) -> bool:
    if len(ring) != 5:
        return False
    xs = {p[0] for p in ring}
    ys = {p[1] for p in ring}
    sides = pairwise(ring)
    axis_aligned = all((a[0] == b[0]) != (a[1] == b[1]) for a, b in sides)
    return len(xs) == 2 and len(ys) == 2 and axis_aligned


def _uuid(value: str | None) -> str:
    if value is not None:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    return str(uuid.uuid4())


__all__ = [
    "MAX_DEPTH",
    "MAX_MEMBERS",
    "OBJECT_TYPES",
    "Annotation",
    "check_depth",
    "parse_feature",
    "parse_geojson",
    "to_feature",
    "to_feature_collection",
]
