"""The region a discussion is pinned to: viewports and geometries, checked."""

from __future__ import annotations

import math

import pytest

from pixelmill.errors import InvalidInput
from pixelmill.imaging.regions import check_region


def test_a_viewport_comes_back_as_given() -> None:
    region = {"x": 0, "y": 10.5, "w": 100, "h": 50, "zoom": 0.25}
    assert check_region(region, (100, 61)) == region
    assert check_region({"x": 5, "y": 5, "w": 1e6, "h": 1}, None)["w"] == 1e6


@pytest.mark.parametrize(
    "region",
    [
        {"x": True, "y": 0, "w": 1, "h": 1},
        {"x": math.nan, "y": 0, "w": 1, "h": 1},
        {"x": "0", "y": 0, "w": 1, "h": 1},
        {"x": -1, "y": 0, "w": 1, "h": 1},
        {"x": 0, "y": 0, "w": 1, "h": 1, "zoom": 0},
        {"x": 0, "y": 0, "w": 101, "h": 1},
        {"x": 0, "y": 0, "w": 1, "h": 1, "patient": "Jane Doe"},
        [0, 0, 1, 1],
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0]]]},
    ],
)
def test_bad_regions_are_refused(region: object) -> None:
    with pytest.raises(InvalidInput):
        check_region(region, (100, 100))


def test_a_geometry_is_checked_by_the_annotation_rules() -> None:
    point = {"type": "Point", "coordinates": [50, 50]}
    assert check_region(point, (100, 100)) == point
    with pytest.raises(InvalidInput):
        check_region({"type": "Point", "coordinates": [150, 50]}, (100, 100))
