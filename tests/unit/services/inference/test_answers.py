"""A predicted mask's PNG: the same 8-bit pixels for every decoder, smaller than
libvips' own, and a record description that is what probing the file finds."""

from __future__ import annotations

import io

import numpy as np
import pytest

from pixelmill.imaging.probe import probe
from pixelmill.services.inference.answers import NPY, encode_mask, mask_info


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
