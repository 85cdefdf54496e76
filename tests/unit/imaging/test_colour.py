"""Colour management: photos with a wide-gamut or CMYK profile come out as the colours
littleCMS (libvips ``icc_transform``) makes of them in sRGB, whatever the path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import pyvips
from skimage.color import deltaE_ciede2000, rgb2lab

from pixelmill.imaging import ops
from pixelmill.imaging.colour import is_srgb, profile_space, to_srgb
from pixelmill.imaging.encode import encode
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.pipeline import run

#: a saturated red as Display-P3 numbers, whose sRGB conversion (241, 0, 4) is a
#: visibly different colour (ΔE00 6.4); pure P3 red would clip to sRGB's own primary
P3_RED = (220, 0, 30)


def _profile(name: str) -> bytes:
    """A profile libvips ships (``srgb``, ``p3``, ``cmyk``): no download, no system file."""
    probe = pyvips.Image.black(2, 2, bands=3).copy(interpretation="srgb")
    return bytes(probe.icc_export(output_profile=name).get("icc-profile-data"))


def _patch(
    rgb: tuple[int, int, int], profile: str, *, size: tuple[int, int] = (800, 600), bits: int = 8
) -> pyvips.Image:
    """A flat patch of ``rgb`` (0..255 numbers) tagged with ``profile``."""
    dtype, scale = (np.uint16, 257) if bits == 16 else (np.uint8, 1)
    pixels = np.empty((size[1], size[0], 3), dtype)
    pixels[...] = [v * scale for v in rgb]
    image = pyvips.Image.new_from_array(pixels)
    image = image.copy(interpretation="rgb16" if bits == 16 else "srgb")
    image.set_type(pyvips.GValue.blob_type, "icc-profile-data", _profile(profile))
    return image


def _centre(image: pyvips.Image) -> np.ndarray:
    """Mean colour of the middle of ``image`` as floats 0..1."""
    pixels = np.asarray(image.numpy(), dtype=np.float64)
    rows, cols = pixels.shape[:2]
    middle = pixels[rows // 4 : 3 * rows // 4, cols // 4 : 3 * cols // 4, :3]
    scale = 65535.0 if str(image.format) == "ushort" else 255.0
    return np.asarray(middle.reshape(-1, 3).mean(axis=0) / scale)


def _delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """CIEDE2000 between two sRGB colours given as floats 0..1."""
    return float(deltaE_ciede2000(rgb2lab(a[None, None]), rgb2lab(b[None, None]))[0, 0])


def _littlecms(data: bytes, *, depth: int = 8) -> np.ndarray:
    """The reference: the decoded source converted to sRGB by libvips/littleCMS."""
    source = pyvips.Image.new_from_buffer(data, "")
    return _centre(source.icc_transform("srgb", embedded=True, depth=depth))


def _render(data: bytes, specs: list[dict[str, Any]], **encoding: Any) -> pyvips.Image:
    image = run(data, ops.parse_pipeline(specs) if specs else [])
    body = encode(image, ImageFormat.PNG, quality=90, **encoding)
    return pyvips.Image.new_from_buffer(body, "")


RESIZES = [[], [{"op": "resize", "width": 100}], [{"op": "resize", "width": 120, "height": 120}]]


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
@pytest.mark.parametrize("specs", RESIZES, ids=["full", "width", "cover"])
def test_display_p3_red_renders_within_two_delta_e_of_littlecms(
    suffix: str, specs: list[dict[str, Any]]
) -> None:
    # given a Display-P3 photo of a red patch
    data = bytes(_patch(P3_RED, "p3").write_to_buffer(suffix, keep="icc"))
    expected = _littlecms(data)
    # the numbers read as sRGB (what stripping the profile used to show) are off by
    # more than twice the tolerance, so the check below can tell
    assert _delta_e(np.array(P3_RED) / 255, expected) > 4
    # when it is rendered (and the profile stripped), it shows the same red
    out = _render(data, specs)
    assert "icc-profile-data" not in out.get_fields()
    assert _delta_e(_centre(out), expected) <= 2


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("specs", RESIZES, ids=["full", "width", "cover"])
def test_16_bit_display_p3_converts_and_stays_16_bit(
    suffix: str, specs: list[dict[str, Any]]
) -> None:
    data = bytes(_patch(P3_RED, "p3", bits=16).write_to_buffer(suffix, keep="icc"))
    out = _render(data, specs)
    assert str(out.format) == "ushort"
    assert _delta_e(_centre(out), _littlecms(data, depth=16)) <= 2


@pytest.mark.parametrize("specs", RESIZES, ids=["full", "width", "cover"])
def test_cmyk_jpeg_renders_as_its_srgb_conversion_without_a_cmyk_profile(
    specs: list[dict[str, Any]],
) -> None:
    # given a print-ready CMYK JPEG with its profile
    cmyk = _patch(P3_RED, "srgb").icc_export(output_profile="cmyk")
    data = bytes(cmyk.write_to_buffer(".jpg", Q=95, keep="icc"))
    expected = _littlecms(data)
    # rendered, it is RGB of the same colour
    out = _render(data, specs)
    assert out.bands == 3
    assert _delta_e(_centre(out), expected) <= 2
    # and with metadata kept, no CMYK profile is left to misdescribe the RGB pixels
    kept = _render(data, specs, strip=False)
    if "icc-profile-data" in kept.get_fields():
        assert profile_space(bytes(kept.get("icc-profile-data"))) == "RGB"


def test_icc_keep_leaves_pixels_and_embeds_the_profile() -> None:
    data = bytes(_patch(P3_RED, "p3", size=(64, 64)).write_to_buffer(".png", keep="icc"))
    image = run(data, ops.parse_pipeline([{"op": "resize", "width": 32}]), icc="keep")
    body = encode(image, ImageFormat.PNG, quality=90, keep_icc=True)
    out = pyvips.Image.new_from_buffer(body, "")
    assert bytes(out.get("icc-profile-data")) == _profile("p3")
    assert np.allclose(_centre(out) * 255, P3_RED, atol=1)


def test_srgb_photos_keep_their_exact_pixels() -> None:
    # an sRGB-tagged image needs no transform: its numbers pass through untouched
    image = _patch(P3_RED, "srgb", size=(64, 64))
    assert to_srgb(image) is image
    data = bytes(image.write_to_buffer(".png", keep="icc"))
    assert np.allclose(_centre(_render(data, [])) * 255, P3_RED, atol=0)


def test_profiles_are_told_apart() -> None:
    assert is_srgb(_profile("srgb"))
    assert not is_srgb(_profile("p3"))
    assert not is_srgb(_profile("cmyk"))
    assert profile_space(_profile("cmyk")) == "CMYK"
    assert profile_space(b"short") == ""


def test_a_broken_profile_is_dropped_not_fatal() -> None:
    # given decoded pixels carrying a damaged profile (an RGB header, no tags)
    image = _patch(P3_RED, "srgb", size=(64, 64))
    image.set_type(pyvips.GValue.blob_type, "icc-profile-data", _profile("p3")[:128])
    # the profile is dropped, the numbers are left as they are
    out = to_srgb(image)
    assert "icc-profile-data" not in out.get_fields()
    assert np.allclose(_centre(out) * 255, P3_RED, atol=0)
