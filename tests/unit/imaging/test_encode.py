"""Encoding: transparency into JPEG, bit depth per output format."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.encode import encode, encode_within
from pixelmill.imaging.formats import ImageFormat


def _half_transparent(bands: int = 4, size: int = 64) -> pyvips.Image:
    """Left half opaque mid-grey, right half fully transparent."""
    pixels = np.full((size, size, bands), 128, np.uint8)
    pixels[:, :, -1] = 255
    pixels[:, size // 2 :, -1] = 0
    return pyvips.Image.new_from_array(pixels).copy(interpretation="srgb" if bands == 4 else "b-w")


def _decode(body: bytes) -> np.ndarray:
    return np.asarray(pyvips.Image.new_from_buffer(body, "").numpy())


@pytest.mark.parametrize("size", [64, 1200], ids=["small", "large"])
def test_transparency_in_jpeg_shows_the_asked_background(size: int) -> None:
    image = _half_transparent(size=size)
    red = _decode(encode(image, ImageFormat.JPEG, quality=95, background=(255, 0, 0)))
    r, g, b = red[size // 2, size - 4]
    assert r > 240 and g < 20 and b < 20
    assert abs(int(red[size // 2, 4, 0]) - 128) < 6  # the opaque half is untouched
    white = _decode(encode(image, ImageFormat.JPEG, quality=95))
    assert white[size // 2, size - 4].min() > 245  # no background asked: white


def test_grey_with_alpha_flattens_onto_the_backgrounds_grey_value() -> None:
    out = _decode(
        encode(_half_transparent(bands=2), ImageFormat.JPEG, quality=95, background=(0, 0, 0))
    )
    assert out.ndim == 2 or out.shape[2] == 1
    assert int(np.squeeze(out)[32, 60]) < 10


def _sixteen_bit() -> pyvips.Image:
    pixels = np.empty((32, 48, 3), np.uint16)
    pixels[...] = (50000, 20001, 10003)  # low bytes that 8 bits cannot hold
    return pyvips.Image.new_from_array(pixels).copy(interpretation="rgb16")


@pytest.mark.parametrize("fmt", [ImageFormat.PNG, ImageFormat.TIFF])
def test_png_and_tiff_keep_16_bits_unless_8_are_asked(fmt: ImageFormat) -> None:
    kept = pyvips.Image.new_from_buffer(encode(_sixteen_bit(), fmt, quality=80), "")
    assert str(kept.format) == "ushort"
    assert kept(3, 3) == [50000, 20001, 10003]
    reduced = pyvips.Image.new_from_buffer(encode(_sixteen_bit(), fmt, quality=80, depth=8), "")
    assert str(reduced.format) == "uchar"
    assert reduced(3, 3) == [195, 78, 39]


@pytest.mark.parametrize("fmt", [ImageFormat.JPEG, ImageFormat.WEBP])
def test_8_bit_formats_get_8_bits(fmt: ImageFormat) -> None:
    out = pyvips.Image.new_from_buffer(encode(_sixteen_bit(), fmt, quality=95), "")
    assert str(out.format) == "uchar"


def _grey(width: int, height: int) -> pyvips.Image:
    return (
        (pyvips.Image.black(width, height, bands=3) + 90).cast("uchar").copy(interpretation="srgb")
    )


LIMITS = [
    (ImageFormat.JPEG, 65500),
    (ImageFormat.WEBP, 16383),
    (ImageFormat.AVIF, 16384),
    (ImageFormat.GIF, 65535),
]


@pytest.mark.parametrize(("fmt", "limit"), LIMITS, ids=[f.value for f, _ in LIMITS])
def test_an_output_larger_than_its_format_holds_is_a_parameter_error(
    fmt: ImageFormat, limit: int
) -> None:
    # the encoder's refusal was answered as a corrupt source (422 corrupt-image); the
    # caller asked for an output the format cannot hold: a parameter error naming the limit
    assert pyvips.Image.new_from_buffer(encode(_grey(limit, 8), fmt, quality=80), "").width == limit
    for width, height in ((limit + 1, 8), (8, limit + 1)):
        with pytest.raises(InvalidParameter) as err:
            encode(_grey(width, height), fmt, quality=80)
        problem = err.value.problem()
        assert problem["type"].endswith("/invalid-parameter") and problem["status"] == 422
        assert (problem["max_side"], problem["format"]) == (limit, fmt.value)
        assert (problem["width"], problem["height"]) == (width, height)
        assert str(limit) in problem["detail"]
    with pytest.raises(InvalidParameter):
        encode_within(_grey(limit + 1, 8), fmt, max_bytes=10_000, quality=80)


@pytest.mark.parametrize("fmt", [ImageFormat.GIF, ImageFormat.WEBP])
def test_an_animation_is_measured_by_its_frames(fmt: ImageFormat) -> None:
    # two 8x10000 frames stacked are 20000 high, more than WebP holds: each frame fits
    frames = _grey(8, 10000).join(_grey(8, 10000) + 100, "vertical").cast("uchar").copy()
    frames.set_type(pyvips.GValue.gint_type, "page-height", 10000)
    out = pyvips.Image.new_from_buffer(encode(frames, fmt, quality=80), "", n=-1)
    assert (out.width, out.get("page-height"), out.get("n-pages")) == (8, 10000, 2)


# A regression of the two below aborts the interpreter ("ffi.from_handle() ... garbage"),
# so each runs in a child process: a crash there is this test's failure, not the suite's end.
_SIXTEEN_BIT = """
import numpy as np, pyvips
from pixelmill.errors import CorruptImage
from pixelmill.imaging.encode import encode, encode_within
from pixelmill.imaging.formats import ImageFormat
noise = (np.random.default_rng(0).random(({h}, {w}, 3)) * 65535).astype(np.uint16)
image = pyvips.Image.new_from_array(noise, interpretation="rgb16").copy_memory()
"""


def _child(code: str) -> str:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize(("fmt", "limit"), [("avif", 20000), ("webp", 50000), ("jpeg", 20000)])
def test_a_quality_search_on_a_converted_image_answers_within_its_bytes(
    fmt: str, limit: int
) -> None:
    # a 16-bit source is converted to 8 bits before each encode of the search: the
    # conversion is one libvips caches, so every step gets the same image back
    code = _SIXTEEN_BIT.format(h=240, w=320) + (
        f"body = encode_within(image, ImageFormat('{fmt}'), max_bytes={limit}, quality=90,"
        " stop=lambda: False)\n"
        "print(len(body))\n"
    )
    assert limit / 4 < int(_child(code)) <= limit  # q90 is 123-144 kB


def test_a_stopped_encode_leaves_the_next_encode_of_the_same_image_alone() -> None:
    # the first request gives up (its client left); a second one of the same pixels
    # must neither crash on the first one's handler nor inherit its kill
    code = _SIXTEEN_BIT.format(h=3000, w=4000) + (
        "try:\n"
        "    encode(image, ImageFormat.JPEG, quality=80, stop=lambda: True)\n"
        "except CorruptImage:\n"
        "    print('stopped')\n"
        "body = encode(image, ImageFormat.JPEG, quality=80, stop=lambda: False)\n"
        "print(pyvips.Image.new_from_buffer(body, '').width)\n"
    )
    assert _child(code).split() == ["stopped", "4000"]
