"""Faces in images: where they are (through a detector the caller passes) and hiding them.

The detector itself (MTCNN on ONNX Runtime) lives in :mod:`pixelmill.ml.faces`, a layer
above this one; operations reach it through :attr:`OpContext.detect_faces`, wired by the
composition root. Boxes are (N, 5) float32 ``x0, y0, x1, y1, score`` in pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pyvips
from numpy.typing import NDArray

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.pixels import join_alpha, split_alpha, to_display

#: an 8-bit (rows, cols, 3) RGB array → (N, 5) boxes in its pixels
DetectFaces = Callable[[NDArray[np.uint8]], NDArray[np.float32]]

#: faces are looked for on a copy at most this many pixels on its longer side: it bounds
#: the detector's time on a 12 MP photo; faces under ~20 px at that size are missed
DETECT_SIDE = 1024


def find_faces(image: pyvips.Image, detect: DetectFaces | None) -> NDArray[np.float32]:
    """The faces of ``image`` as (N, 5) boxes in its own pixels, best score first.

    Raises :class:`InvalidParameter` (422) when no detector is available here."""
    if detect is None:
        raise InvalidParameter("face detection is not available in this context")
    scale = min(1.0, DETECT_SIDE / max(image.width, image.height))
    small = image.resize(scale) if scale < 1.0 else image
    rgb = to_display(split_alpha(small)[0])
    if rgb.bands == 1:
        rgb = rgb.bandjoin([rgb, rgb])
    pixels = np.ascontiguousarray(np.asarray(rgb.numpy(), dtype=np.uint8)[..., :3])
    boxes = np.asarray(detect(pixels), np.float32).reshape(-1, 5).copy()
    # back to the image's pixels: the same factors resize used on each axis
    boxes[:, [0, 2]] *= image.width / max(rgb.width, 1)
    boxes[:, [1, 3]] *= image.height / max(rgb.height, 1)
    return boxes


def faces_focus(boxes: NDArray[np.float32], width: int, height: int) -> tuple[float, float] | None:
    """The centre of the box around all faces, as fractions (x, y) of the image; ``None``
    without faces.

    Examples
    --------
    >>> faces_focus(np.array([[10, 20, 30, 40, 0.9]], np.float32), 100, 100)
    (0.2, 0.3)
    """
    if not len(boxes):
        return None
    x0, y0 = float(boxes[:, 0].min()), float(boxes[:, 1].min())
    x1, y1 = float(boxes[:, 2].max()), float(boxes[:, 3].max())
    return (
        min(1.0, max(0.0, (x0 + x1) / 2 / width)),
        min(1.0, max(0.0, (y0 + y1) / 2 / height)),
    )


def grown(box: NDArray[np.float32], margin: float, width: int, height: int) -> tuple[int, ...]:
    """``box`` grown by ``margin`` of its size on every side, clipped to the image →
    integer ``(left, top, width, height)``; zero-sized when outside the image."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    left, top = max(0, int(np.floor(x0 - dx))), max(0, int(np.floor(y0 - dy)))
    right, bottom = min(width, int(np.ceil(x1 + dx))), min(height, int(np.ceil(y1 + dy)))
    return left, top, max(0, right - left), max(0, bottom - top)


def obscure(
    image: pyvips.Image,
    boxes: NDArray[np.float32],
    *,
    how: Literal["blur", "pixelate"],
    strength: float | None = None,
    margin: float = 0.2,
) -> pyvips.Image:
    """``image`` with each face region (grown by ``margin``) blurred or pixelated; the
    rest untouched, alpha kept.

    ``strength``: the Gaussian sigma (blur) or block side (pixelate) in pixels; ``None``
    scales it to each face — sigma a fifth, blocks a tenth of the region's longer side —
    so a large face is as unrecognisable as a small one.
    """
    base, alpha = split_alpha(image)
    fmt = base.format
    for box in boxes:
        left, top, w, h = grown(box, margin, base.width, base.height)
        if w < 2 or h < 2:
            continue
        region = base.extract_area(left, top, w, h)
        region = (
            _blurred(region, strength, w, h) if how == "blur" else _blocks(region, strength, w, h)
        )
        base = base.insert(region.cast(fmt), left, top)
    return join_alpha(base, alpha)


def _blurred(region: pyvips.Image, sigma: float | None, w: int, h: int) -> pyvips.Image:
    sigma = sigma or max(w, h) / 5
    # a wide blur is as good on a shrunk copy, scaled back: its kernel is ~6 sigma wide,
    # so a face 500 px tall costs a 600-tap kernel at full size and 24 taps shrunk
    shrink = min(max(1.0, sigma / 4), max(1.0, min(w, h) / 4))
    if shrink <= 2:
        return region.gaussblur(sigma)
    small = region.resize(1 / shrink).gaussblur(sigma / shrink)
    big = small.resize(w / small.width, vscale=h / small.height)
    return big.embed(0, 0, w, h, extend="copy").extract_area(0, 0, w, h)


def _blocks(region: pyvips.Image, block: float | None, w: int, h: int) -> pyvips.Image:
    side = max(2, int(block or max(w, h) / 10))
    small = region.resize(1 / side, kernel="linear")
    big = small.resize(side, kernel="nearest")
    # the block grid rarely divides the region: pad with the last row/column of blocks
    return big.embed(0, 0, w, h, extend="copy").extract_area(0, 0, w, h)


def box_json(boxes: NDArray[np.float32]) -> list[dict[str, Any]]:
    """Boxes as JSON: ``{"box": [x0, y0, x1, y1], "score": s}``, one decimal place."""
    return [
        {"box": [round(float(v), 1) for v in b[:4]], "score": round(float(b[4]), 4)} for b in boxes
    ]
