"""Small helpers on libvips images shared by operations and encoders."""

from __future__ import annotations

import pyvips

#: the field libvips' loaders set on an image opened with ``access="sequential"``
_SEQUENTIAL = "vips-sequential"


def in_memory(image: pyvips.Image) -> pyvips.Image:
    """``image`` computed into memory, without libvips' sequential-access hint.

    An image decoded top to bottom carries a ``vips-sequential`` field, and every image
    made from it inherits the field, a copy in memory too. ``reducev`` and ``shrinkv``
    (any resize) put a line cache in front of an input with that field, to keep the
    decode in order: pixels already in memory need none (0.5 ms of the 3.8 ms resize of a
    480x360 GIF frame, docs/benchmarks.md "GIF → JPEG: where each millisecond goes").
    """
    out = image.copy_memory()
    if not out.get_typeof(_SEQUENTIAL):
        return out
    out = out.copy()  # a new header over the same pixels: the memory image may be shared
    out.remove(_SEQUENTIAL)
    return out


def split_alpha(image: pyvips.Image) -> tuple[pyvips.Image, pyvips.Image | None]:
    """Separate the alpha band (if any) so tone operations leave transparency alone."""
    if image.hasalpha():
        return image.extract_band(0, n=image.bands - 1), image.extract_band(image.bands - 1)
    return image, None


def join_alpha(image: pyvips.Image, alpha: pyvips.Image | None) -> pyvips.Image:
    return image if alpha is None else image.bandjoin(alpha)


def to_display(image: pyvips.Image) -> pyvips.Image:
    """Convert any image to 8-bit sRGB or grey (plus alpha) for encoding.

    16-bit RGB/grey are converted by libvips' colour management (``>> 8`` scaling);
    other high-bit or float images are min-max stretched to 0..255; images with more
    than four bands (multi-channel fluorescence) keep their first three.
    """
    interp = str(image.interpretation)
    if image.bands > 4 or (image.bands == 2 and not image.hasalpha()):
        image = image.extract_band(0, n=min(3, image.bands))
        image = image.copy(interpretation="srgb" if image.bands == 3 else "b-w")
        interp = str(image.interpretation)
    if interp in ("rgb16", "grey16"):
        return image.colourspace("srgb" if interp == "rgb16" else "b-w")
    if interp in ("cmyk", "lab", "labs", "lch", "xyz", "scrgb", "hsv", "yxy", "cmc"):
        image = image.colourspace("srgb")
    if str(image.format) != "uchar":
        lo, hi = image.min(), image.max()
        scale = 255.0 / (hi - lo) if hi > lo else 1.0
        image = ((image - lo) * scale).cast("uchar")
    if str(image.interpretation) not in ("srgb", "b-w"):
        image = image.copy(interpretation="srgb" if image.bands >= 3 else "b-w")
    return image
