"""Faces in the imaging layer: where the faces' box puts a crop's centre, how a face
box grows and clips, and that hiding faces touches only their regions."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.faces import faces_focus, find_faces, grown, obscure


def test_focus_is_the_centre_of_the_box_around_all_faces() -> None:
    boxes = np.array([[10, 10, 20, 20, 0.9], [60, 30, 90, 50, 0.8]], np.float32)
    assert faces_focus(boxes, 100, 100) == pytest.approx((0.5, 0.3))
    assert faces_focus(np.zeros((0, 5), np.float32), 100, 100) is None


def test_a_face_box_grows_by_the_margin_and_stays_inside_the_image() -> None:
    assert grown(np.array([10, 10, 30, 20], np.float32), 0.5, 100, 100) == (0, 5, 40, 20)
    assert grown(np.array([90, 90, 110, 110], np.float32), 0.0, 100, 100) == (90, 90, 10, 10)


@pytest.mark.parametrize("how", ["blur", "pixelate"])
def test_hiding_a_face_changes_its_region_only_and_keeps_alpha(how: str) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (80, 120, 4), dtype=np.uint8)
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    box = np.array([[40, 20, 80, 60, 1.0]], np.float32)
    out = np.asarray(obscure(image, box, how=how, margin=0.0).numpy())  # type: ignore[arg-type]
    assert out.shape == pixels.shape
    inside = (slice(20, 60), slice(40, 80))
    assert np.abs(out[inside][..., :3].astype(int) - pixels[inside][..., :3]).mean() > 40
    outside = np.ones(pixels.shape[:2], bool)
    outside[inside] = False
    assert (out[outside] == pixels[outside]).all()
    assert (out[..., 3] == pixels[..., 3]).all()


def test_asking_for_faces_without_a_detector_is_a_clear_422() -> None:
    image = pyvips.Image.black(10, 10, bands=3)
    with pytest.raises(InvalidParameter, match="face detection is not available"):
        find_faces(image, None)
