"""QuPath GeoJSON in and out: real QuPath exports survive import -> export -> import, and
bad annotations are refused with a problem a client can act on."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixelmill.errors import InvalidAnnotation
from pixelmill.imaging.annotations import (
    Annotation,
    parse_geojson,
    to_feature,
    to_feature_collection,
)

DATA = Path(__file__).parent / "data"
FIXTURES = sorted(DATA.glob("*.geojson"))


def square(x0: float, y0: float, side: float) -> list[list[list[float]]]:
    return [[[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side], [x0, y0]]]


def feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": props}


def polygon(coords: Any) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": coords}


def essentials(a: Annotation) -> tuple[Any, ...]:
    return (
        a.geometry, a.shape, a.object_type, a.class_name, a.color, a.name, a.is_locked,
        a.measurements, a.properties, a.extra,
    )  # fmt: skip


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_qupath_export_round_trips_through_pixelmill(path: Path) -> None:
    first = parse_geojson(path.read_bytes())
    exported = json.dumps(to_feature_collection(first))
    second = parse_geojson(exported)
    assert [essentials(a) for a in second] == [essentials(a) for a in first]
    # and the export is what QuPath imports: a FeatureCollection of UUID-identified
    # features with objectType and classification {name, color}
    doc = json.loads(exported)
    assert doc["type"] == "FeatureCollection"
    for out, ann in zip(doc["features"], first, strict=True):
        assert out["type"] == "Feature"
        uuid.UUID(out["id"])
        assert out["properties"]["objectType"] == ann.object_type
        if ann.class_name is not None:
            assert out["properties"]["classification"] == {
                "name": ann.class_name,
                "color": list(ann.color or ()),
            }


def test_real_qupath_v02_cell_is_read_with_its_class_colour_and_measurements() -> None:
    (cell,) = parse_geojson((DATA / "luna_qupath_cell_v02.geojson").read_bytes())
    assert (cell.object_type, cell.class_name, cell.color) == ("cell", "Other", (0, 128, 128))
    assert cell.measurements["Cell: Area µm^2"] == pytest.approx(611.3109741210938)
    assert cell.extra["nucleusGeometry"]["type"] == "Polygon"
    assert cell.id is None  # "PathCellObject" names the class, not the object


def test_real_qupath_v03_cells_keep_their_uuids() -> None:
    cells = parse_geojson((DATA / "luna_qupath_cells_v03.geojson").read_bytes())
    ids = [to_feature(c)["id"] for c in cells]
    assert ids == ["5868af7c-9aaf-4646-b618-e0a3cf74b94f", "e38fc918-edeb-462e-9d80-ed48ad582746"]


def test_every_shape_and_qupath_property_is_understood() -> None:
    anns = parse_geojson((DATA / "qupath_annotations_handwritten.geojson").read_bytes())
    by_shape = {a.shape: a for a in anns}
    assert set(by_shape) == {"polygon", "multipolygon", "rectangle", "multipoint", "line", "point"}
    tumour = by_shape["polygon"]
    assert (tumour.class_name, tumour.color, tumour.is_locked) == ("Tumor", (200, 0, 0), True)
    assert tumour.name == "Tumour with necrotic core"
    assert by_shape["multipolygon"].class_name == "Stroma: Positive"
    assert by_shape["multipoint"].color == (255, 0, 0)  # colorRGB -65536 = opaque red
    assert by_shape["rectangle"].properties == {"metadata": {"reviewer": "pathologist-2"}}
    assert by_shape["rectangle"].bbox == (10, 20, 110, 70)
    point = by_shape["point"]
    assert point.object_type == "detection"
    assert point.measurements == {"Detection probability": 0.87, "Nucleus: Area": None}


def test_a_bare_feature_a_geometry_and_a_feature_array_are_accepted() -> None:
    geom = polygon(square(0, 0, 10))
    assert len(parse_geojson(feature(geom))) == 1
    assert parse_geojson(geom)[0].object_type == "annotation"
    assert len(parse_geojson([feature(geom), feature(geom)])) == 2


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (b"{not json", "bad-json"),
        (b"[" * 100_000 + b"]" * 100_000, "bad-json"),
        ({"type": "Topology"}, "not-geojson"),
        ({"type": "Feature", "geometry": None}, "missing-geometry"),
        (feature({"type": "GeometryCollection", "geometries": []}), "unsupported-geometry"),
        (feature({"type": "Point", "coordinates": [1.0, float("nan")]}), "non-finite"),
        (feature({"type": "Point", "coordinates": [1.0, "2"]}), "bad-coordinates"),
        (feature({"type": "LineString", "coordinates": [[1, 1]]}), "degenerate-line"),
        (feature(polygon([[[0, 0], [1, 1], [0, 0]]])), "degenerate-ring"),
        (feature(polygon(square(0, 0, 5)), objectType="rootObject"), "bad-object-type"),
        (feature(polygon(square(0, 0, 5)), isLocked="yes"), "bad-locked"),
        (feature(polygon(square(0, 0, 5)), name=42), "bad-name"),
        (
            feature(polygon(square(0, 0, 5)), classification={"name": "T", "color": [1, 2]}),
            "bad-color",
        ),
        (
            feature(polygon([[[0, 0], [4, 0], [5, 3], [0, 2], [0, 0]]]), shape="rectangle"),
            "bad-rectangle",
        ),
        (feature(polygon(square(0, 0, 5)), measurements=[{"value": 1}]), "bad-measurements"),
    ],
)
def test_malformed_annotations_are_refused_with_a_named_problem(doc: Any, problem: str) -> None:
    with pytest.raises(InvalidAnnotation) as err:
        parse_geojson(doc)
    assert err.value.status == 422
    assert err.value.extra["problem"] == problem


def test_the_offending_feature_is_named() -> None:
    good = feature(polygon(square(0, 0, 5)))
    bad = feature({"type": "Point", "coordinates": [float("inf"), 0]})
    with pytest.raises(InvalidAnnotation) as err:
        parse_geojson({"type": "FeatureCollection", "features": [good, good, bad]})
    assert err.value.extra["feature"] == 2
    assert err.value.problem()["feature"] == 2


def test_positions_outside_the_image_are_refused() -> None:
    doc = feature(polygon(square(90, 40, 20)))
    assert parse_geojson(doc, image_size=(200, 100))
    with pytest.raises(InvalidAnnotation) as err:
        parse_geojson(doc, image_size=(100, 100))
    assert err.value.extra["problem"] == "out-of-bounds"


def test_vertex_and_feature_limits_hold() -> None:
    ring = [[float(i), float(i % 7)] for i in range(2000)] + [[0.0, 0.0]]
    with pytest.raises(InvalidAnnotation) as err:
        parse_geojson(feature({"type": "LineString", "coordinates": ring}), max_vertices=1000)
    assert err.value.extra["problem"] == "too-many-vertices"
    many = [feature(polygon(square(0, 0, 5)))] * 11
    with pytest.raises(InvalidAnnotation) as err:
        parse_geojson(many, max_features=10)
    assert err.value.extra["problem"] == "too-many-features"


def test_open_rings_are_closed_or_refused() -> None:
    open_ring = feature(polygon([[[0, 0], [10, 0], [10, 10], [0, 10]]]))
    (closed,) = parse_geojson(copy.deepcopy(open_ring))
    assert closed.geometry["coordinates"][0][-1] == [0, 0]
    with pytest.raises(InvalidAnnotation) as err:
        parse_geojson(open_ring, repair=False)
    assert err.value.extra["problem"] == "unclosed-ring"


def test_a_self_intersecting_polygon_is_repaired_or_refused() -> None:
    bowtie = feature(polygon([[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]]))
    (fixed,) = parse_geojson(bowtie)
    assert fixed.geometry["type"] == "MultiPolygon"  # two triangles meeting at (5, 5)
    from shapely.geometry import shape

    assert shape(fixed.geometry).is_valid
    assert shape(fixed.geometry).area == pytest.approx(50.0)
    with pytest.raises(InvalidAnnotation) as err:
        parse_geojson(bowtie, repair=False)
    assert err.value.extra["problem"] == "invalid-polygon"
    assert "Self-intersection" in err.value.detail


def test_a_zero_area_polygon_cannot_be_repaired() -> None:
    flat = feature(polygon([[[0, 0], [10, 0], [20, 0], [0, 0]]]))
    with pytest.raises(InvalidAnnotation) as err:
        parse_geojson(flat)
    assert err.value.extra["problem"] == "invalid-polygon"


def test_export_gives_a_fresh_uuid_when_the_id_is_not_one() -> None:
    (ann,) = parse_geojson({**feature(polygon(square(0, 0, 5))), "id": "cell-17"})
    first, second = to_feature(ann)["id"], to_feature(ann)["id"]
    assert uuid.UUID(first) and first != second


coordinate = st.floats(min_value=0, max_value=1e6, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    xs=st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=30),
    name=st.one_of(st.none(), st.text(max_size=20)),
    cls=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
    color=st.tuples(*[st.integers(0, 255)] * 3),
)
def test_any_polygon_we_accept_round_trips_exactly(
    xs: list[tuple[float, float]], name: str | None, cls: str | None, color: tuple[int, int, int]
) -> None:
    ring = [list(p) for p in xs] + [list(xs[0])]
    props: dict[str, Any] = {"objectType": "annotation", "name": name}
    if cls is not None:
        props["classification"] = {"name": cls, "color": list(color)}
    try:
        (first,) = parse_geojson(json.dumps(feature(polygon([ring]), **props)))
    except InvalidAnnotation as exc:
        assert exc.extra["problem"] in ("invalid-polygon", "degenerate-ring")
        return
    (second,) = parse_geojson(json.dumps(to_feature(first)))
    assert essentials(second) == essentials(first)
