"""What a feature may not carry: nesting deeper than ``MAX_DEPTH``, the server's own
``pixelmill`` member, too many foreign members, a nucleus that is not an area."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pixelmill.errors import InvalidAnnotation
from pixelmill.imaging.annotations import (
    MAX_DEPTH,
    Limits,
    check_depth,
    parse_feature,
    parse_geojson,
    to_feature,
)

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]}


def nested(levels: int) -> Any:
    """``levels`` arrays, one inside the other."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def feature(**members: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": SQUARE, "properties": {}, **members}


def problem(exc: pytest.ExceptionInfo[InvalidAnnotation]) -> Any:
    return exc.value.extra["problem"]


@pytest.mark.parametrize("levels", [MAX_DEPTH - 1, MAX_DEPTH])
def test_a_feature_may_nest_up_to_max_depth(levels: int) -> None:
    # feature (1) > properties (2) > "x": levels - 2 arrays
    deep = feature(properties={"x": nested(levels - 2)})
    check_depth(deep)
    assert parse_feature(deep, Limits()).properties["x"] == nested(levels - 2)


@pytest.mark.parametrize(
    "where",
    [
        lambda v: feature(properties={"x": v}),
        lambda v: feature(extra=v),
        lambda v: feature(geometry={**SQUARE, "plane": v}),
        lambda v: feature(nucleusGeometry={**SQUARE, "plane": v}),
        lambda v: feature(properties={"measurements": {"m": v}}),
    ],
    ids=["properties", "foreign-member", "geometry-member", "nucleus-member", "measurements"],
)
@pytest.mark.parametrize("levels", [MAX_DEPTH, 350, 5000])
def test_deeper_features_are_refused_naming_the_limit_and_the_feature(
    where: Any, levels: int
) -> None:
    doc = {"type": "FeatureCollection", "features": [feature(), where(nested(levels))]}
    with pytest.raises(InvalidAnnotation) as exc:
        parse_geojson(doc)
    assert problem(exc) == "too-deep"
    assert exc.value.extra["feature"] == 1
    assert exc.value.extra["max_depth"] == MAX_DEPTH
    assert f"deeper than {MAX_DEPTH} levels" in str(exc.value)


@pytest.mark.parametrize("levels", [MAX_DEPTH, 5000])
@pytest.mark.parametrize("member", ["geometry", "nucleusGeometry"])
def test_deep_coordinates_are_refused_by_the_geometry_check(member: str, levels: int) -> None:
    geometry = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], nested(levels)]]}
    with pytest.raises(InvalidAnnotation) as exc:
        parse_feature(feature(**{member: geometry}), Limits(), index=0)
    assert problem(exc) == "bad-coordinates"


def test_deep_json_text_is_refused_as_an_annotation_not_a_crash() -> None:
    text = '{"type": "Feature", "geometry": ' + json.dumps(SQUARE)
    text += ', "properties": {"x": ' + "[" * 600 + "]" * 600 + "}}"
    with pytest.raises(InvalidAnnotation) as exc:
        parse_geojson(text)
    assert problem(exc) == "too-deep"


def test_the_server_owned_pixelmill_member_is_dropped() -> None:
    forged = {"source": "analysis", "author_id": "someone", "measurements": {"area": 1}}
    annotation = parse_feature(feature(pixelmill=forged, plane={"c": 0}), Limits())
    assert "pixelmill" not in annotation.extra
    assert annotation.extra == {"plane": {"c": 0}}
    assert "pixelmill" not in to_feature(annotation)


def test_too_many_foreign_members_are_refused() -> None:
    members = {f"m{i}": i for i in range(100)}
    with pytest.raises(InvalidAnnotation) as exc:
        parse_feature(feature(**members), Limits(), index=0)
    assert problem(exc) == "too-many-members"


@pytest.mark.parametrize(
    "nucleus",
    [
        {"type": "Point", "coordinates": [5, 5]},
        {"type": "LineString", "coordinates": [[1, 1], [5, 5]]},
        "a string",
    ],
)
def test_a_nucleus_geometry_must_be_an_area(nucleus: Any) -> None:
    cell = feature(properties={"objectType": "cell"}, nucleusGeometry=nucleus)
    with pytest.raises(InvalidAnnotation) as exc:
        parse_feature(cell, Limits(), index=0)
    assert problem(exc) == "bad-nucleus-geometry"


def test_a_polygon_nucleus_is_kept() -> None:
    cell = feature(properties={"objectType": "cell"}, nucleusGeometry=SQUARE)
    assert parse_feature(cell, Limits()).extra["nucleusGeometry"] == SQUARE
