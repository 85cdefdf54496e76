"""Images whose alpha is opaque everywhere render as RGB and look as they did; an image
with one transparent pixel keeps its alpha and renders exactly as before."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips

from pixelmill.imaging import alpha, intermediates, pipeline
from pixelmill.imaging import encode as encoding
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.intermediates import whole_image
from pixelmill.imaging.ops import OpContext
from pixelmill.imaging.render import parse_render, to_steps
from pixelmill.services.intermediates import IntermediateCache
from tests.helpers import libvips_operations


def _photo(width: int = 160, height: int = 120, seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 8, 0), 8, 1)[:height, :width].copy()


def _rgba(alpha_value: int = 255, hole: tuple[int, int] | None = None) -> np.ndarray:
    rgb = _photo()
    a = np.full((*rgb.shape[:2], 1), alpha_value, np.uint8)
    if hole is not None:
        a[hole[1], hole[0], 0] = 0
    return np.concatenate([rgb, a], axis=2)


def _png(pixels: np.ndarray, interpretation: str = "srgb", **fields: int) -> bytes:
    image = pyvips.Image.new_from_array(pixels).copy(interpretation=interpretation)
    for name, value in fields.items():
        image.set_type(pyvips.GValue.gint_type, name, value)
    return bytes(image.write_to_buffer(".png", keep="all" if fields else "none"))


def _render(source: bytes, fmt: str, kept: bool = False, **query: str) -> pyvips.Image:
    """A render as the gateway runs it, its decode kept (``kept``) or streamed."""
    p = parse_render({"w": "100", "h": "60", "format": fmt, "q": "90", **query}, max_side=8192)
    ctx = OpContext()
    if kept:
        ctx.intermediates, ctx.source_id = IntermediateCache(64 << 20), "original"
    image = pipeline.run(source, to_steps(p), ctx)
    return pyvips.Image.new_from_buffer(encoding.encode(image, ImageFormat(fmt), quality=90), "")


def _render_before(
    monkeypatch: pytest.MonkeyPatch, source: bytes, fmt: str, kept: bool = False, **query: str
) -> pyvips.Image:
    """The same render with both alpha checks off (what pixelmill did before)."""
    with monkeypatch.context() as patched:
        patched.setattr(intermediates, "drop_opaque_alpha", lambda image: image)
        patched.setattr(encoding, "_ALPHA_KEPT", ())
        return _render(source, fmt, kept, **query)


def _max_diff(a: pyvips.Image, b: pyvips.Image) -> int:
    x, y = a.numpy().astype(np.int32), b.numpy().astype(np.int32)
    return int(np.abs(x - y).max())


OPAQUE = _png(_rgba())
ONE_HOLE = _png(_rgba(hole=(61, 43)))  # off the coarse look's every-8th grid


@pytest.mark.parametrize("kept", [False, True], ids=["streamed", "kept"])
@pytest.mark.parametrize("fmt", ["png", "webp", "avif", "jpeg"])
def test_an_opaque_rgba_png_renders_as_rgb_with_the_same_pixels(
    monkeypatch: pytest.MonkeyPatch, fmt: str, kept: bool
) -> None:
    before = _render_before(monkeypatch, OPAQUE, fmt, kept)
    after = _render(OPAQUE, fmt, kept)
    assert after.bands == 3
    assert (after.width, after.height) == (before.width, before.height) == (100, 60)
    if before.bands == 4:
        assert before.extract_band(3).min() == 255
        before = before.extract_band(0, n=3)
    # streamed: the same resize, the band dropped at encoding. Kept: RGB resizes in
    # integers where RGBA did premultiplied float, within a level of the old pixels
    # (lossless PNG; the lossy codecs add their own small differences)
    assert _max_diff(after, before) <= (0 if not kept else 1 if fmt == "png" else 12)


@pytest.mark.parametrize("kept", [False, True], ids=["streamed", "kept"])
@pytest.mark.parametrize("fmt", ["png", "webp", "avif"])
def test_one_transparent_pixel_keeps_the_alpha_and_the_old_pixels(
    monkeypatch: pytest.MonkeyPatch, fmt: str, kept: bool
) -> None:
    query = {"w": "160", "h": "120"}  # no shrink: the transparent pixel is in the output
    before = _render_before(monkeypatch, ONE_HOLE, fmt, kept, **query)
    after = _render(ONE_HOLE, fmt, kept, **query)
    assert after.bands == before.bands == 4
    assert after.extract_band(3).min() < 255
    assert _max_diff(after, before) == 0


def _srgb(pixels: np.ndarray) -> pyvips.Image:
    return pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")


def test_the_opaque_check_reads_every_pixel() -> None:
    for x, y in [(0, 0), (61, 43), (159, 119), (7, 9)]:
        assert not alpha.is_opaque(_srgb(_rgba(hole=(x, y))))
    assert alpha.is_opaque(_srgb(_rgba()))
    assert not alpha.is_opaque(_srgb(_rgba(alpha_value=254)))


def test_a_large_image_is_checked_at_every_pixel_too() -> None:
    # over 1 MP: libvips' coarse look first, then every pixel (not read out into numpy)
    rgba = np.full((900, 1200, 4), 255, np.uint8)
    assert alpha.is_opaque(_srgb(rgba))
    for x, y in [(0, 0), (613, 437), (1199, 899)]:  # on and off the coarse look's grid
        holed = rgba.copy()
        holed[y, x, 3] = 0
        assert not alpha.is_opaque(_srgb(holed))
    deep = np.full((900, 1200, 2), 65535, np.uint16)
    deep[455, 3, 1] = 65534
    assert not alpha.is_opaque(pyvips.Image.new_from_array(deep).copy(interpretation="grey16"))


def test_a_small_image_is_checked_in_one_read_of_its_pixels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a decoded 480x360 frame in memory (a GIF's frame 0, the size of the
    # benchmark's): each libvips reduction (min) costs ~0.3 ms of set-up, more than
    # reading the frame's 0.7 MB out once
    frame = _srgb(np.full((360, 480, 4), 255, np.uint8)).copy_memory()
    holed = np.full((360, 480, 4), 255, np.uint8)
    holed[200, 301, 3] = 0
    with_hole = _srgb(holed).copy_memory()
    ran = libvips_operations(monkeypatch)
    # when its opacity is checked, then no libvips operation runs over it
    assert alpha.is_opaque(frame) and not alpha.is_opaque(with_hole)
    assert ran == []


def test_sixteen_bit_grey_and_extra_bands() -> None:
    deep = (_rgba().astype(np.uint16) * 257).copy()
    assert alpha.is_opaque(pyvips.Image.new_from_array(deep).copy(interpretation="rgb16"))
    deep[3, 5, 3] = 65534
    assert not alpha.is_opaque(pyvips.Image.new_from_array(deep).copy(interpretation="rgb16"))
    grey = pyvips.Image.new_from_array(_rgba()[:, :, 2:]).copy(interpretation="b-w")
    assert alpha.drop_opaque_alpha(grey).bands == 1
    five = pyvips.Image.new_from_array(np.full((8, 8, 5), 255, np.uint8))
    assert alpha.drop_opaque_alpha(five).bands == 5  # channels, not an alpha band


def test_kept_decodes_drop_an_opaque_alpha() -> None:
    store = IntermediateCache(64 << 20)
    opaque = whole_image(OPAQUE, store, "opaque")
    transparent = whole_image(ONE_HOLE, store, "hole")
    assert opaque is not None and transparent is not None
    assert (opaque.bands, transparent.bands) == (3, 4)


def test_a_small_opaque_output_is_encoded_as_rgb() -> None:
    image = _srgb(_rgba())
    for fmt in (ImageFormat.PNG, ImageFormat.AVIF):
        body = encoding.encode(image, fmt, quality=90)
        assert pyvips.Image.new_from_buffer(body, "").bands == 3
    body = encoding.encode(_srgb(_rgba(hole=(3, 3))), ImageFormat.PNG, quality=90)
    assert pyvips.Image.new_from_buffer(body, "").bands == 4
