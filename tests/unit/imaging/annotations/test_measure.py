"""Measurements of an annotation: exact shape figures (px and µm), point counts, and the
intensities of the pixels it covers measured by the same code as segmented objects."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.annotations import (
    annotation_mask,
    geometry_measurements,
    intensity_measurements,
    parse_geojson,
)


def ring(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


FRAME = {"type": "Polygon", "coordinates": [ring(10, 20, 50, 60), ring(20, 30, 30, 40)]}


def test_polygon_area_perimeter_centroid_and_box_in_pixels_and_micrometres() -> None:
    m = geometry_measurements(FRAME, pixel_size_um=0.5)
    assert m["area_px"] == pytest.approx(40 * 40 - 10 * 10)
    assert m["perimeter_px"] == pytest.approx(160 + 40)  # the hole's edge counts
    assert m["area_um2"] == pytest.approx(1500 * 0.25)
    assert m["perimeter_um"] == pytest.approx(100)
    assert (m["bbox_min_x"], m["bbox_min_y"], m["bbox_max_x"], m["bbox_max_y"]) == (10, 20, 50, 60)
    # the hole sits up-left of the centre, so the centroid moves down-right of (30, 40)
    assert m["centroid_x"] > 30 and m["centroid_y"] > 40


def test_without_a_pixel_size_micrometres_are_null_never_guessed() -> None:
    m = geometry_measurements(FRAME)
    assert m["area_um2"] is None and m["perimeter_um"] is None


def test_points_are_counted_and_lines_measured() -> None:
    points = {"type": "MultiPoint", "coordinates": [[1, 1], [3, 1], [5, 4]]}
    assert geometry_measurements(points)["point_count"] == 3
    assert geometry_measurements({"type": "Point", "coordinates": [2, 2]})["point_count"] == 1
    line = {"type": "LineString", "coordinates": [[0, 0], [30, 0], [30, 40]]}
    m = geometry_measurements(line, pixel_size_um=0.25)
    assert (m["length_px"], m["length_um"]) == (70.0, 17.5)


def test_mask_takes_pixels_whose_centres_are_inside_and_honours_holes() -> None:
    mask = annotation_mask(FRAME, (100, 100))
    assert mask.sum() == 1500  # integer-aligned polygon: exactly its area in pixels
    assert mask[20, 10] and mask[59, 49] and not mask[60, 50] and not mask[19, 10]
    assert not mask[35, 25]  # inside the hole
    shifted = annotation_mask(FRAME, (50, 50), origin=(20, 10))
    assert np.array_equal(shifted[:40, :40], mask[20:60, 10:50])


def test_a_polygon_inside_another_polygons_hole_is_kept() -> None:
    island = {
        "type": "MultiPolygon",
        "coordinates": [[ring(0, 0, 30, 30), ring(10, 10, 20, 20)], [ring(12, 12, 18, 18)]],
    }
    mask = annotation_mask(island, (40, 40))
    assert mask.sum() == 900 - 100 + 36


def test_intensities_inside_the_annotation_use_the_object_measurement() -> None:
    region = np.zeros((100, 100, 3), np.uint8)
    region[..., 0] = 200  # red everywhere
    region[30:40, 20:30, 1] = 90  # green only in the hole, which must not count
    region[20:60, 10:50, 2] = 10
    (ann,) = parse_geojson({"type": "Feature", "geometry": FRAME, "properties": {}})
    m = intensity_measurements(region, ann, pixel_size_um=0.5)
    assert m["pixel_count"] == 1500
    assert m["mean_intensity_red"] == pytest.approx(200)
    assert m["max_intensity_green"] == 0
    assert m["integrated_intensity_blue"] == pytest.approx(1500 * 10)


def test_intensities_of_a_region_read_at_an_offset() -> None:
    plane = np.arange(200 * 200, dtype=np.uint16).reshape(200, 200)
    square = {"type": "Polygon", "coordinates": [ring(120, 110, 122, 112)]}
    region = plane[100:150, 100:150]
    m = intensity_measurements(region, square, origin=(100, 100))
    expected = plane[110:112, 120:122].mean()
    assert (m["pixel_count"], m["mean_intensity"]) == (4, pytest.approx(expected))


def test_an_annotation_outside_the_region_or_without_area_is_refused() -> None:
    region = np.zeros((10, 10), np.uint8)
    with pytest.raises(InvalidParameter):
        intensity_measurements(region, FRAME)  # FRAME starts at x=10, y=20
    with pytest.raises(InvalidParameter):
        intensity_measurements(region, {"type": "Point", "coordinates": [1, 1]})
