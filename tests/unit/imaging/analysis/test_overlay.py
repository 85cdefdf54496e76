"""Visual outputs compared with golden images by SSIM (tests/golden/analysis/*.png).

Set PIXELMILL_UPDATE_GOLDEN=1 to (re)write a golden after an intended visual change.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import pyvips
from skimage.metrics import structural_similarity

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis import overlay as ov
from pixelmill.imaging.analysis.segment import segment_nuclei
from tests.unit.imaging.analysis import synthetic as syn

GOLDEN = Path(__file__).parents[3] / "golden" / "analysis"


def assert_golden(name: str, image: np.ndarray, *, min_ssim: float = 0.98) -> None:
    path = GOLDEN / f"{name}.png"
    if os.environ.get("PIXELMILL_UPDATE_GOLDEN") == "1" or not path.exists():
        GOLDEN.mkdir(parents=True, exist_ok=True)
        pyvips.Image.new_from_array(image).write_to_file(str(path))
        if os.environ.get("PIXELMILL_UPDATE_GOLDEN") != "1":
            pytest.fail(f"golden {path.name} was missing and has been written; check it in")
    golden = pyvips.Image.new_from_file(str(path)).numpy()
    assert golden.shape == image.shape
    score = structural_similarity(golden, image, channel_axis=-1, data_range=255)
    assert score >= min_ssim, f"{name}: SSIM {score:.3f} < {min_ssim}"


def scene() -> tuple[np.ndarray, np.ndarray]:
    s = syn.blobs((128, 160), seed=21)
    image = syn.as_uint8(syn.degrade(s.image, seed=21))
    return image, segment_nuclei(image, min_area=30).labels


def test_contour_overlay_golden() -> None:
    image, labels = scene()
    out = ov.overlay(image, labels, style="contour", colour=(255, 255, 0))
    assert out.dtype == np.uint8 and out.shape == (*image.shape, 3)
    assert_golden("contour", out)


def test_fill_overlay_per_label_colours_golden() -> None:
    image, labels = scene()
    assert_golden("fill_labels", ov.overlay(image, labels, style="both", colour=None, thickness=2))


def test_side_by_side_golden() -> None:
    image, labels = scene()
    out = ov.side_by_side([image, ov.overlay(image, labels)], gap=6)
    assert out.shape == (128, 2 * 160 + 6, 3)
    assert (out[:, 160:166] == 255).all()
    assert_golden("side_by_side", out)


def test_alpha_zero_leaves_the_image_alone() -> None:
    image, labels = scene()
    out = ov.overlay(image, labels, alpha=0.0)
    assert np.array_equal(out[..., 0], image)


def test_display_scaling_of_16_bit_and_multichannel() -> None:
    dim = np.full((8, 8), 1000, np.uint16)
    dim[0, 0] = 3000
    shown = ov.display_rgb(dim)
    assert shown.shape == (8, 8, 3) and shown.max() == 255  # auto-contrast, not ÷257
    stack = np.zeros((8, 8, 4), np.float32)
    stack[..., 1] = np.linspace(0, 1, 64).reshape(8, 8)
    assert ov.display_rgb(stack)[..., 1].max() == 255  # channel 1 shows green


def test_mismatched_labels_are_refused() -> None:
    image, labels = scene()
    with pytest.raises(InvalidParameter, match="differ in size"):
        ov.overlay(image[:10], labels)
