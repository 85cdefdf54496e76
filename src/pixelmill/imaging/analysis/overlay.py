"""Visual outputs: segmentation overlays and side-by-side comparisons (uint8 RGB out).

Display scaling (:func:`display_rgb`): 8-bit images are shown as they are; 16-bit RGB
is divided by 257; 16-bit and float grey or multi-channel images are auto-contrasted
per channel between the 0.1 and 99.9 percentiles (like Fiji's *Auto*), and channels
beyond RGB are composited additively in red, green, blue, grey, cyan, magenta, yellow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis._arrays import check_image, n_channels, to_uint8
from pixelmill.imaging.analysis.preprocess import percentiles

OverlayStyle = Literal["contour", "fill", "both"]
RGB = tuple[int, int, int]

_COMPOSITE = np.array(
    [
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [255, 255, 255],
        [0, 255, 255],
        [255, 0, 255],
        [255, 255, 0],
    ],
    np.float32,
)
#: QuPath's colours for DAB classes: negative blue, 1+ yellow, 2+ orange, 3+ red
CLASS_COLOURS = np.array([[112, 112, 255], [255, 215, 0], [255, 128, 0], [200, 0, 0]], np.uint8)


def _autocontrast(channel: np.ndarray) -> np.ndarray:
    lo, hi = percentiles(channel, 0.1, 99.9)
    if hi <= lo:
        return np.zeros(channel.shape, np.float32)
    return np.clip((channel.astype(np.float32) - lo) / (hi - lo), 0, 1)


def display_rgb(image: np.ndarray) -> np.ndarray:
    """Any analysis image as uint8 (H, W, 3) RGB for display (see module docs).

    Examples
    --------
    >>> display_rgb(np.zeros((2, 3), np.uint8)).shape
    (2, 3, 3)
    """
    check_image(image, what="display")
    c = n_channels(image)
    if c in (1, 3) and (image.dtype == np.uint8 or (c == 3 and image.dtype == np.uint16)):
        rgb = to_uint8(image)
        return np.ascontiguousarray(np.repeat(rgb[..., None], 3, 2) if rgb.ndim == 2 else rgb)
    if c == 3 and image.dtype.kind == "f":
        return to_uint8(image)
    if c == 4 and image.dtype == np.uint8:
        return np.ascontiguousarray(image[..., :3])
    planes = [image] if image.ndim == 2 else [image[..., i] for i in range(c)]
    if c == 1:
        grey = (_autocontrast(planes[0]) * 255 + 0.5).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, 2))
    out = np.zeros((*image.shape[:2], 3), np.float32)
    for i, plane in enumerate(planes):
        out += _autocontrast(plane)[..., None] * _COMPOSITE[i % len(_COMPOSITE)]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def boundaries(labels: np.ndarray, *, thickness: int = 1) -> np.ndarray:
    """Inner object boundaries: object pixels with a 4-neighbour of another label (or
    the image edge), thickened inwards to ``thickness`` pixels. bool (H, W)."""
    import cv2

    p = np.pad(labels, 1, mode="edge")
    centre = p[1:-1, 1:-1]
    edge = (
        (centre != p[:-2, 1:-1])
        | (centre != p[2:, 1:-1])
        | (centre != p[1:-1, :-2])
        | (centre != p[1:-1, 2:])
    ) & (centre != 0)
    if thickness > 1:
        k = 2 * (thickness - 1) + 1
        grown = cv2.dilate(edge.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
        edge = grown & (labels != 0)
    return np.asarray(edge)


def label_palette(count: int, *, seed: int = 0) -> np.ndarray:
    """uint8 (count + 1, 3) colours, index 0 black: well-separated hues (golden-ratio
    steps), full saturation, so neighbouring labels differ."""
    import cv2

    hues = ((np.arange(count + 1) * 0.618033988749895 + seed * 0.1) % 1.0) * 180
    hsv = np.stack([hues, np.full(count + 1, 220), np.full(count + 1, 255)], axis=-1).astype(
        np.uint8
    )
    rgb = np.asarray(cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB))[0]
    rgb[0] = 0
    return rgb


def overlay(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    style: OverlayStyle = "contour",
    colour: RGB | None = (255, 255, 0),
    alpha: float = 1.0,
    fill_alpha: float = 0.35,
    thickness: int = 1,
    palette: np.ndarray | None = None,
) -> np.ndarray:
    """Draw objects over an image.

    Parameters
    ----------
    image : (H, W) or (H, W, C), any supported dtype
        Shown with :func:`display_rgb` scaling.
    labels : (H, W) integer
        Same rows/cols as ``image``.
    style : {"contour", "fill", "both"}
    colour : (r, g, b) or None
        One colour for all objects; None colours each label from ``palette`` (default
        :func:`label_palette`).
    alpha : float
        Opacity of contours, 0..1.
    fill_alpha : float
        Opacity of fills, 0..1.
    thickness : int
        Contour thickness in pixels (drawn inside objects).
    palette : (N + 1, 3) uint8, optional
        Colour per label value (e.g. DAB classes mapped through :data:`CLASS_COLOURS`).

    Returns
    -------
    numpy.ndarray
        uint8 (H, W, 3) RGB.

    Examples
    --------
    >>> lab = np.zeros((5, 5), np.uint16); lab[1:4, 1:4] = 1
    >>> overlay(np.zeros((5, 5), np.uint8), lab)[1, 1].tolist()
    [255, 255, 0]
    """
    if labels.shape != image.shape[:2]:
        raise InvalidParameter(
            f"labels {labels.shape} and image {image.shape[:2]} differ in size; "
            "overlay after the steps that change geometry"
        )
    if not 0 <= alpha <= 1 or not 0 <= fill_alpha <= 1:
        raise InvalidParameter("alpha values are between 0 and 1")
    base = display_rgb(image)
    if np.shares_memory(base, image):
        base = base.copy()
    top = int(labels.max()) if labels.size else 0
    if colour is not None:
        colours = np.zeros((top + 1, 3), np.float32)
        colours[1:] = colour
    else:
        pal = palette if palette is not None else label_palette(top)
        if len(pal) < top + 1:
            raise InvalidParameter("the palette has fewer colours than labels")
        colours = np.asarray(pal, np.float32)
    fill = style in ("fill", "both") and top > 0
    contour = style in ("contour", "both") and top > 0
    if not fill and not contour:
        return base
    # blended in float32 only where something is drawn (every pixel left alone keeps its
    # 8-bit value): 12 bytes of each touched pixel, not of the whole image
    edge = boundaries(labels, thickness=thickness) if contour else None
    touched = labels != 0 if fill else edge
    assert touched is not None
    values = base[touched].astype(np.float32)
    drawn = labels[touched]
    if fill:
        values = values * (1 - fill_alpha) + colours[drawn] * fill_alpha
    if edge is not None:
        on_edge = edge[touched] if fill else slice(None)
        values[on_edge] = values[on_edge] * (1 - alpha) + colours[drawn[on_edge]] * alpha
    base[touched] = np.clip(values + 0.5, 0, 255).astype(np.uint8)
    return base


def side_by_side(
    images: Sequence[np.ndarray], *, gap: int = 8, background: RGB = (255, 255, 255)
) -> np.ndarray:
    """Images placed left to right, top-aligned, ``gap`` pixels apart, on ``background``.

    Returns
    -------
    numpy.ndarray
        uint8 (max H, sum W + gaps, 3) RGB (inputs shown with :func:`display_rgb`).
    """
    if not images:
        raise InvalidParameter("side_by_side needs at least one image")
    shown = [display_rgb(im) for im in images]
    height = max(im.shape[0] for im in shown)
    width = sum(im.shape[1] for im in shown) + gap * (len(shown) - 1)
    out = np.empty((height, width, 3), np.uint8)
    out[:] = np.asarray(background, np.uint8)
    x = 0
    for im in shown:
        out[: im.shape[0], x : x + im.shape[1]] = im
        x += im.shape[1] + gap
    return out


__all__ = [
    "CLASS_COLOURS",
    "boundaries",
    "display_rgb",
    "label_palette",
    "overlay",
    "side_by_side",
]
