"""Decoding plain PNGs with OpenCV, for predictions: a 256 x 256 grey PNG decodes in
about a third of the time libvips takes (0.47 vs 1.45 ms on the 2-core test machine),
most of which is libvips' per-image set-up, a large share of a small prediction's
fixed cost (docs/benchmarks.md, "ML serving over HTTP").

Only PNGs both decoders read to the same array are taken: 8- or 16-bit grey, RGB or
RGBA, without a palette or a transparency chunk (for those libvips adds or expands
bands differently). Everything else returns ``None`` and goes to libvips.
"""

from __future__ import annotations

import struct

import numpy as np
from numpy.typing import NDArray

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: IHDR colour types taken: grey, RGB, RGBA (not palette 3, grey + alpha 4)
_COLOUR_TYPES = {0: 1, 2: 3, 6: 4}
#: chunks that change the decoded bands
_BAND_CHUNKS = (b"tRNS", b"PLTE")


def plain_png(data: bytes) -> bool:
    """Whether ``data`` is a PNG that OpenCV and libvips decode to the same array. The
    chunks before the first IDAT are read (their headers only)."""
    if len(data) < 33 or not data.startswith(_SIGNATURE) or data[12:16] != b"IHDR":
        return False
    depth, colour = data[24], data[25]
    if depth not in (8, 16) or colour not in _COLOUR_TYPES:
        return False
    at = 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"IDAT":
            return True
        if kind in _BAND_CHUNKS:
            return False
        at += 12 + length
    return False


def decode_plain_png(data: bytes) -> NDArray[np.generic] | None:
    """(rows, cols) or (rows, cols, bands) in the file's dtype, RGB(A) order, as
    :func:`pixelmill.ml.preprocess.decode` gives; ``None`` when not :func:`plain_png`
    or when OpenCV cannot decode it (libvips then says why)."""
    if not plain_png(data):
        return None
    import cv2

    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.shape[:2] != _size(data):
        return None
    bands = _COLOUR_TYPES[data[25]]
    if array.ndim == 2:
        return array if bands == 1 else None
    if array.shape[2] != bands:
        return None
    code = cv2.COLOR_BGR2RGB if bands == 3 else cv2.COLOR_BGRA2RGBA
    return np.asarray(cv2.cvtColor(array, code))


def _size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", data[16:24])
    return int(height), int(width)
