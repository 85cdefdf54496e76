"""Polygons to instance label masks: each polygon its own label, pixel centres decide,
holes stay background, the later polygon wins an overlap, and labels pack into uint16."""

from __future__ import annotations

import numpy as np

from pixelmill.ml.annotation_masks import label_mask, relabel


def box(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def test_each_polygon_is_its_own_object_and_the_later_one_lies_on_top() -> None:
    a = {"type": "Polygon", "coordinates": [box(0, 0, 4, 4)]}
    b = {"type": "Polygon", "coordinates": [box(2, 2, 6, 6)]}
    point = {"type": "Point", "coordinates": [1, 1]}
    labels = label_mask([a, point, b], (8, 8))
    assert labels.dtype == np.int32
    assert labels[0, 0] == 1 and labels[3, 3] == 3 and labels[5, 5] == 3
    assert (labels == 1).sum() == 16 - 4 and (labels == 3).sum() == 16
    assert 2 not in labels  # a point covers no area: its label stays unused


def test_holes_stay_background_and_objects_off_the_image_are_clipped() -> None:
    ring = {"type": "Polygon", "coordinates": [box(0, 0, 6, 6), box(2, 2, 4, 4)]}
    edge = {"type": "MultiPolygon", "coordinates": [[box(6, 6, 10, 10)]]}
    labels = label_mask([ring, edge], (8, 8))
    assert labels[3, 3] == 0 and labels[1, 1] == 1
    assert (labels == 1).sum() == 36 - 4 and (labels == 2).sum() == 4


def test_relabel_packs_labels_without_gaps() -> None:
    labels = np.array([[0, 3, 3], [7, 7, 0]], np.int32)
    out = relabel(labels)
    assert out.dtype == np.uint16 and out.tolist() == [[0, 1, 1], [2, 2, 0]]
