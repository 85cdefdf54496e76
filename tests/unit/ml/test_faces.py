"""The face detector: its box maths (IoU, NMS, regression, squaring, the pyramid) and,
on a real public-domain portrait, that it finds the hand-labelled face."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixelmill.ml.faces import iou, nms, pyramid_scales, regress, square
from tests.faces_helpers import astronaut, detector


def test_iou_of_identical_disjoint_and_half_overlapping_boxes() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [5, 0, 15, 10], [3, 3, 3, 8]], np.float32)
    assert iou(a, b)[0].tolist() == pytest.approx([1.0, 0.0, 1 / 3, 0.0])


def test_nms_keeps_the_best_of_overlapping_boxes_and_every_separate_one() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.8, 0.9, 0.7], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]


def test_nms_min_mode_drops_a_box_inside_a_better_one() -> None:
    # IoU is small (0.04) but the small box lies wholly inside the big one
    boxes = np.array([[0, 0, 50, 50], [10, 10, 20, 20]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, 0.7).tolist() == [0, 1]
    assert nms(boxes, scores, 0.7, mode="min").tolist() == [0]


boxes_st = st.lists(
    st.tuples(
        st.floats(0, 100), st.floats(0, 100), st.floats(1, 50), st.floats(1, 50), st.floats(0, 1)
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(boxes_st, st.floats(0.1, 0.9))
def test_nms_leaves_no_pair_above_the_threshold(raw: list[tuple[float, ...]], cut: float) -> None:
    arr = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in raw], np.float32).reshape(-1, 4)
    scores = np.array([s for *_, s in raw], np.float32)
    keep = nms(arr, scores, cut)
    kept = arr[keep]
    overlap = iou(kept, kept) - np.eye(len(kept), dtype=np.float32)
    assert (overlap <= cut + 1e-6).all()
    assert list(scores[keep]) == sorted(scores[keep], reverse=True)


def test_regression_moves_edges_by_fractions_of_the_box_size() -> None:
    box = np.array([[10, 20, 30, 60]], np.float32)  # 20 wide, 40 tall
    moved = regress(box, np.array([[0.5, -0.25, 0.0, 0.5]], np.float32))
    assert moved.tolist() == [[20, 10, 30, 80]]


def test_square_keeps_the_centre_and_takes_the_longer_side() -> None:
    assert square(np.array([[10, 0, 30, 40]], np.float32)).tolist() == [[0, 0, 40, 40]]


def test_pyramid_reaches_from_the_smallest_face_to_the_whole_image() -> None:
    scales = pyramid_scales(512, 512, 20)
    assert scales[0] == pytest.approx(12 / 20)
    assert 512 * scales[-1] >= 12 > 512 * scales[-1] * 0.709


def test_the_astronauts_face_is_found_where_it_was_labelled_by_hand() -> None:
    image, truth = astronaut()
    faces = detector().detect(image)
    best = faces[0]
    assert best.score > 0.99
    assert iou(np.array([best.box], np.float32), truth)[0, 0] >= 0.5
    # the eyes (first two landmarks) lie in the face's upper half
    for x, y in best.landmarks[:2]:
        assert truth[0, 0] < x < truth[0, 2] and truth[0, 1] < y < (truth[0, 1] + truth[0, 3]) / 2


def test_a_grey_image_and_other_dtypes_are_accepted() -> None:
    image, truth = astronaut()
    grey = image.mean(axis=2).astype(np.uint16) * 257
    boxes = detector().boxes(grey)
    assert boxes.shape[1] == 5 and iou(boxes[:1, :4], truth)[0, 0] >= 0.5
    assert detector().boxes(np.zeros((64, 64, 3), np.uint8)).shape == (0, 5)


def test_the_networks_ship_in_the_package_with_their_licence_and_recorded_hashes() -> None:
    import hashlib
    from importlib import resources
    from pathlib import Path

    folder = resources.files("pixelmill.ml") / "models" / "faces"
    provenance = (folder / "PROVENANCE.md").read_text()
    assert "MIT License" in provenance and "facenet-pytorch==2.6.0" in provenance
    docs = " ".join((Path(__file__).parents[3] / "docs" / "ml.md").read_text().split())
    for name in ("pnet", "rnet", "onet"):
        digest = hashlib.sha256((folder / f"{name}.onnx").read_bytes()).hexdigest()
        assert f"{name} `{digest[:8]}" in docs
