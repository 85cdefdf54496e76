"""A predicted mask's PNG: the same 8-bit pixels for every decoder, smaller than
libvips' own, and a record description that is what probing the file finds; its
measurements cost what its pixels cost, whatever the mask."""

from __future__ import annotations

import io

import numpy as np
import pytest

from pixelmill.imaging.analysis.morphology import MAX_EXACT_RADIUS
from pixelmill.imaging.probe import probe
from pixelmill.ml.spec import InputSpec
from pixelmill.services.inference.answers import NPY, encode_mask, mask_info, measure_mask
from tests.unit.imaging.analysis.test_morphology import kernel_sides, pinholes  # noqa: F401


def _mask(rows: int, cols: int, seed: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    mask = np.zeros((rows, cols), np.uint8)
    for _ in range(max(1, rows * cols // 1500)):
        centre = (int(rng.integers(0, cols)), int(rng.integers(0, rows)))
        cv2.circle(mask, centre, int(rng.integers(3, 12)), 255, -1)
    return mask


SHAPES = [(1, 1), (7, 300), (256, 256), (333, 517), (1024, 1024)]


@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_every_decoder_reads_back_the_same_eight_bit_mask(rows: int, cols: int) -> None:
    import cv2
    import pyvips
    from PIL import Image

    mask = _mask(rows, cols, rows + cols)
    png = encode_mask(mask)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    by_vips = pyvips.Image.new_from_buffer(png, "").numpy()
    by_cv2 = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    by_pil = np.asarray(Image.open(io.BytesIO(png)))
    for decoded in (by_vips, by_cv2, by_pil):
        assert decoded.dtype == np.uint8
        np.testing.assert_array_equal(decoded.reshape(rows, cols), mask)


def test_the_png_is_smaller_than_libvips_own_at_the_same_zlib_level() -> None:
    import pyvips

    mask = _mask(512, 512, 3)
    ours = encode_mask(mask)
    theirs = pyvips.Image.new_from_array(mask).write_to_buffer(".png", compression=1)
    assert len(ours) < len(theirs)


@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_the_known_description_is_what_probing_the_png_finds(rows: int, cols: int) -> None:
    mask = _mask(rows, cols, 7)
    assert mask_info(mask) == probe(encode_mask(mask), max_pixels=1 << 40)


def test_npy_answers_keep_the_array() -> None:
    mask = _mask(40, 60, 1)
    np.testing.assert_array_equal(np.load(io.BytesIO(encode_mask(mask, NPY))), mask)


def test_measuring_a_mask_that_is_one_object_costs_what_its_pixels_cost(
    kernel_sides: list[int],  # noqa: F811
) -> None:
    # given what a model may predict for noise: one object over the image, with pinholes
    mask = (pinholes(600) * 255).astype(np.uint8)
    image = np.random.default_rng(1).integers(0, 256, mask.shape, dtype=np.uint8)
    spec = InputSpec(grow=1, min_object_fraction=0.25, fill_holes=True)  # the shipped model's
    # when a prediction measures it
    out = measure_mask(mask, image, spec=spec)
    # then the objects were split without a disc wider than the bound (old: 405 px; at 2100²
    # 1415 px, minutes) and they are all listed, covering the mask
    assert max(kernel_sides) <= 2 * MAX_EXACT_RADIUS + 1
    assert 1 <= out["count"] == len(out["objects"]) <= 10 and not out["truncated"]
    assert out["area_px"]["total"] >= 0.95 * np.count_nonzero(mask)
