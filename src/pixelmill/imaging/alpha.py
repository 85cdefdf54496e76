"""Opaque alpha: an alpha band at its maximum on every pixel, dropped where that is cheap.

Many RGBA images are opaque everywhere: screenshots and design exports saved with an
alpha channel, GIFs (libvips decodes every GIF to RGBA, :mod:`pixelmill.imaging.gif`).
Their alpha still costs each render: libvips' ``thumbnail`` premultiplies and resizes
four bands in float instead of three in integers, the PNG and AVIF encoders store the
band, a JPEG is flattened first. Dropping a band that is 255 (65535) everywhere changes
what no viewer shows: the colour bands are the same, the file is RGB (grey) instead.

Correctness first: only a check of every pixel proves opacity; an image with one
transparent pixel keeps its alpha. :func:`is_opaque` reads a small image's pixels out
once and takes the alpha's minimum in numpy: each libvips reduction over an image costs
~0.3 ms of set-up whatever its size, more than the whole read of a 480x360 GIF frame
(docs/benchmarks.md, "GIF → JPEG: where each millisecond goes"). A larger image is left
in libvips: every eighth pixel of every eighth row first (an image with a transparent
region fails there, at 1/64 of the cost), then every pixel. Only two- and four-band
8/16-bit images are considered (grey and RGB with alpha, as libvips reads them); more
bands are channels, not alpha.

Where it applies: a kept decode (:mod:`pixelmill.imaging.intermediates`: the whole
image is in memory then, checked once, kept as RGB — every render of it resizes three
bands), and a small output of a format that stores alpha (:mod:`pixelmill.imaging.encode`:
computed into memory, checked, encoded without the band). Not before a streamed resize:
proving a PNG opaque needs its whole decode in memory, which costs more than the RGB
resize saves when the PNG turns out transparent (docs/benchmarks.md, "Render fixed
cost"); GIFs have their own cheap first look (:mod:`pixelmill.imaging.gif`).
"""

from __future__ import annotations

import numpy as np
import pyvips

_TOP = {"uchar": 255, "ushort": 65535}
_DTYPE = {"uchar": np.uint8, "ushort": np.uint16}
_COARSE = 8  # the first look: every 8th pixel of every 8th row

#: images of at most this many pixels are checked in numpy, their pixels read out once
#: (a copy of at most 8 MB); beyond, the copy costs more than libvips' two reductions
_READ_OUT_PIXELS = 1_000_000


def is_opaque(image: pyvips.Image) -> bool:
    """Whether ``image`` is grey or RGB with an alpha band at its maximum everywhere.

    Reads every pixel: a small image (at most 1 MP) copied out once, every band; a
    larger one's alpha when a first, coarse look finds no transparency. Pass an image in
    memory (or one cheap to compute)."""
    fmt = str(image.format)
    top = _TOP.get(fmt)
    if top is None or image.bands not in (2, 4) or not image.hasalpha():
        return False
    if image.width * image.height <= _READ_OUT_PIXELS:
        values = np.frombuffer(image.write_to_memory(), _DTYPE[fmt])
        return bool(values[image.bands - 1 :: image.bands].min() >= top)
    alpha = image.extract_band(image.bands - 1)
    coarse = image.width >= 2 * _COARSE and image.height >= 2 * _COARSE
    if coarse and alpha.subsample(_COARSE, _COARSE).min() < top:
        return False
    return bool(alpha.min() >= top)


def drop_opaque_alpha(image: pyvips.Image) -> pyvips.Image:
    """``image`` without its alpha band when :func:`is_opaque`, else ``image``."""
    return image.extract_band(0, n=image.bands - 1) if is_opaque(image) else image
