"""A decode copied into memory resizes as memory: without the sequential-access hint
that makes libvips put a line cache in front of every resize of it, and with the same
pixels."""

from __future__ import annotations

import numpy as np
import pyvips

from pixelmill.imaging import gif, pixels
from pixelmill.imaging.intermediates import whole_image
from pixelmill.services.intermediates import IntermediateCache

SEQUENTIAL = "vips-sequential"


def _png(width: int = 240, height: int = 180) -> bytes:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    return bytes(image.write_to_buffer(".png"))


def _gif(width: int = 240, height: int = 180) -> bytes:
    return bytes(pyvips.Image.new_from_buffer(_png(width, height), "").write_to_buffer(".gif"))


def test_a_sequential_decode_in_memory_drops_the_hint_and_keeps_its_pixels() -> None:
    # given a PNG decoded top to bottom (libvips marks it, and every copy of it)
    decoded = pyvips.Image.new_from_buffer(_png(), "", access="sequential")
    assert decoded.get_typeof(SEQUENTIAL)
    # when it is computed into memory
    image = pixels.in_memory(decoded)
    # then a resize of it is a resize of memory, of the same pixels, as fast as it goes
    assert not image.get_typeof(SEQUENTIAL)
    again = pyvips.Image.new_from_buffer(_png(), "").numpy()
    assert (image.numpy() == again).all()
    resized = image.resize(0.8).numpy()
    assert (resized == pyvips.Image.new_from_buffer(_png(), "").resize(0.8).numpy()).all()


def test_an_image_already_without_the_hint_is_kept_as_it_is() -> None:
    image = pixels.in_memory(pyvips.Image.new_from_buffer(_png(), "", access="random"))
    assert not image.get_typeof(SEQUENTIAL)
    assert (image.width, image.height, image.bands) == (240, 180, 3)


def test_an_opaque_gif_frame_and_a_kept_decode_resize_without_a_line_cache() -> None:
    # the two decodes into memory the render path makes: an opaque GIF's frame 0
    # (proven opaque on its pixels, then resized) and a kept original
    frame = gif.opaque_first_frame(_gif())
    kept = whole_image(_png(), IntermediateCache(64 << 20), "original")
    assert frame is not None and frame.bands == 3
    assert kept is not None
    assert not frame.get_typeof(SEQUENTIAL)
    assert not kept.get_typeof(SEQUENTIAL)
