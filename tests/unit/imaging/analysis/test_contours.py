"""Object outlines traced from labels: each polygon covers exactly its object's pixels."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import Polygon

from pixelmill.imaging.analysis.contours import label_polygons
from tests.unit.imaging.analysis import synthetic as syn


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_outlines_have_the_objects_areas_and_boxes(seed: int) -> None:
    labels = syn.blobs((120, 160), seed=seed).truth
    outlines = label_polygons(labels)
    assert sorted(outlines) == sorted(set(np.unique(labels)) - {0})
    for label, ring in outlines.items():
        polygon = Polygon(ring)
        assert polygon.is_valid and ring[0] == ring[-1]
        assert polygon.area == pytest.approx(float((labels == label).sum()))
        rows, cols = np.nonzero(labels == label)
        assert polygon.bounds == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


def test_only_the_asked_objects_and_single_pixels() -> None:
    labels = np.zeros((5, 5), np.uint16)
    labels[0, 0] = 1
    labels[2:4, 2:5] = 2
    assert label_polygons(labels, [1, 9]) == {
        1: [[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    }
    with pytest.raises(ValueError):
        label_polygons(np.zeros((2, 2, 2), np.uint16))
