"""Background subtraction: rolling ball (ImageJ's) or white top-hat, for uneven
illumination, autofluorescence and stain haze.

Takes an image ``(H, W)`` or ``(H, W, C)`` of dtype uint8, uint16, float32 or float64 and
returns the same shape and dtype. The radius is in pixels; OpenCV and scikit-image are
imported lazily.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis._arrays import check_image, full_scale, map_channels

BackgroundMethod = Literal["rolling_ball", "tophat"]


def subtract_background(
    image: np.ndarray,
    *,
    radius: float = 50.0,
    method: BackgroundMethod = "rolling_ball",
    light_background: bool = False,
) -> np.ndarray:
    """Remove uneven background (illumination, autofluorescence, stain haze).

    Parameters
    ----------
    image : (H, W) or (H, W, C) uint8, uint16, float32 or float64
        Channels are processed separately.
    radius : float
        Ball (or disk) radius in pixels; larger than the largest object of interest.
    method : {"rolling_ball", "tophat"}
        ``rolling_ball``: ImageJ's algorithm — the image is shrunk by the minimum of
        blocks (x1 for radius <= 10, x2 <= 30, x4 <= 100, else x8), a ball of the shrunk
        radius is rolled under it (grey opening by the ball, from two scikit-image
        ``rolling_ball`` passes), and the background is enlarged back bilinearly.
        ``tophat``: white top-hat with a disk of ``radius`` (OpenCV), i.e. the image
        minus its morphological opening.
    light_background : bool
        Objects are dark on a light background (brightfield): the background is pulled
        up to full scale instead of down to zero.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype; the background becomes 0 (full scale with
        ``light_background``).

    Examples
    --------
    >>> ramp = np.tile(np.linspace(20, 120, 64, dtype=np.float32) / 255, (64, 1))
    >>> float(subtract_background(ramp, radius=5, method="tophat").max()) < 0.05
    True
    """
    check_image(image, what="subtract_background")
    if radius < 1:
        raise InvalidParameter("background radius must be >= 1 pixel")
    top = full_scale(image.dtype)
    work = image.astype(np.float32) if image.dtype == np.float64 else image

    def one(ch: np.ndarray) -> np.ndarray:
        src = (top - ch).astype(ch.dtype) if light_background else ch
        if method == "tophat":
            out = _tophat(src, radius)
        elif method == "rolling_ball":
            out = _rolling_ball(src, radius)
        else:
            raise InvalidParameter(f"unknown background method {method!r}")
        return (top - out).astype(ch.dtype) if light_background else out

    return map_channels(work, one).astype(image.dtype, copy=False)


def _disk(radius: float) -> np.ndarray:
    import cv2

    r = max(1, round(radius))
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))


def _tophat(channel: np.ndarray, radius: float) -> np.ndarray:
    import cv2

    return np.asarray(cv2.morphologyEx(channel, cv2.MORPH_TOPHAT, _disk(radius)))


def _rolling_ball(channel: np.ndarray, radius: float) -> np.ndarray:
    import cv2
    from skimage.restoration import rolling_ball

    shrink = 1 if radius <= 10 else 2 if radius <= 30 else 4 if radius <= 100 else 8
    h, w = channel.shape
    small = channel
    if shrink > 1:
        # the minimum of each block, as ImageJ shrinks (edge blocks padded by repetition)
        ph, pw = -h % shrink, -w % shrink
        padded = np.pad(channel, ((0, ph), (0, pw)), mode="edge") if ph or pw else channel
        hh, ww = padded.shape[0] // shrink, padded.shape[1] // shrink
        small = padded.reshape(hh, shrink, ww, shrink).min(axis=(1, 3))
    # intensity heights are in pixel units for the ball, as in ImageJ. scikit-image's
    # rolling_ball is the erosion by the ball only; ImageJ's background is the opening
    # (the ball rolled back up), which is the erosion's dilation: -erode(-eroded).
    r = radius / shrink
    eroded = rolling_ball(small.astype(np.float32), radius=r, workers=1)
    background = -rolling_ball(-eroded, radius=r, workers=1)
    if shrink > 1:
        background = cv2.resize(
            background.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR
        )
    background = np.minimum(background, channel)
    return (channel - background.astype(channel.dtype)).astype(channel.dtype)


__all__ = ["BackgroundMethod", "subtract_background"]
