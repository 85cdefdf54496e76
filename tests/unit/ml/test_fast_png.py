"""Plain PNGs decoded by OpenCV for predictions: the same arrays libvips gives, and
everything else left to libvips."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from pixelmill.errors import CorruptImage
from pixelmill.ml.fast_png import decode_plain_png, plain_png
from pixelmill.ml.preprocess import decode


def by_libvips(data: bytes) -> np.ndarray:
    array = np.asarray(pyvips.Image.new_from_buffer(data, "").numpy())
    return array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array


def png(array: np.ndarray, **options: object) -> bytes:
    image = pyvips.Image.new_from_array(array)
    deep = array.dtype == np.uint16
    if array.ndim == 3 and array.shape[2] >= 3:
        image = image.copy(interpretation="rgb16" if deep else "srgb")
    elif deep:
        image = image.copy(interpretation="grey16")
    return bytes(image.write_to_buffer(".png", **options))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("bands", [1, 3, 4])
@pytest.mark.parametrize("interlace", [False, True])
def test_plain_pngs_decode_to_what_libvips_gives(dtype: type, bands: int, interlace: bool) -> None:
    rng = np.random.default_rng(bands)
    shape = (37, 53) if bands == 1 else (37, 53, bands)
    array = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    data = png(array, interlace=interlace)
    fast = decode_plain_png(data)
    assert fast is not None  # taken by OpenCV
    assert fast.dtype == dtype and np.array_equal(fast, by_libvips(data))
    assert np.array_equal(decode(data), array)  # RGB order, not OpenCV's BGR


def test_other_pngs_are_left_to_libvips() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
    grey_alpha = rng.integers(0, 255, (20, 20, 2), dtype=np.uint8)
    one_bit = rng.integers(0, 2, (20, 20), dtype=np.uint8) * 255
    for data in (
        png(rgb, palette=True),
        png(grey_alpha),
        png(one_bit, bitdepth=1),
        b"not a png at all, but long enough to look at",
    ):
        assert not plain_png(data)
        assert decode_plain_png(data) is None


def test_a_transparency_chunk_leaves_the_png_to_libvips() -> None:
    data = png(np.zeros((8, 8), np.uint8))
    ihdr_end = 8 + 12 + 13  # signature, then IHDR (length, type, 13 bytes, CRC)
    trns = b"\x00\x00\x00\x02tRNS\x00\x00\x00\x00\x00\x00"  # the chunk's CRC is not checked here
    assert plain_png(data)
    assert not plain_png(data[:ihdr_end] + trns + data[ihdr_end:])


def test_a_truncated_png_is_still_refused_as_before() -> None:
    data = png(np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8))
    with pytest.raises(CorruptImage):
        decode(data[:40])
