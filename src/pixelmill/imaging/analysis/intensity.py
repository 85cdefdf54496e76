"""Intensity normalisation and channel selection: exact percentiles, percentile
stretching to full scale, picking channels out of multi-channel images.

Every function takes an image ``(H, W)`` or ``(H, W, C)`` of dtype uint8, uint16,
float32 or float64 and returns the same shape and dtype (channel selection excepted);
percentiles are 0..100.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis._arrays import check_image, full_scale, n_channels


def percentiles(image: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles (0..100) of all values of ``image``, exact.

    Integer images use a histogram (linear time); floats use :func:`numpy.percentile`.
    """
    if image.dtype in (np.uint8, np.uint16):
        hist = np.bincount(image.ravel(), minlength=256 if image.dtype == np.uint8 else 65536)
        cdf = np.cumsum(hist)
        n = cdf[-1]
        out = []
        for q in (low, high):
            # the value at rank q/100 x (n - 1), linear between neighbours as numpy does
            pos = q / 100.0 * (n - 1)
            k = int(np.floor(pos))
            v0 = int(np.searchsorted(cdf, k + 1))
            v1 = int(np.searchsorted(cdf, min(k + 2, n)))
            out.append(v0 + (v1 - v0) * (pos - k))
        return float(out[0]), float(out[1])
    lo, hi = np.percentile(image, [low, high])
    return float(lo), float(hi)


def normalize_percentile(
    image: np.ndarray,
    *,
    low: float = 1.0,
    high: float = 99.8,
    per_channel: bool = True,
) -> np.ndarray:
    """Stretch intensities so the ``low`` percentile maps to 0 and ``high`` to full scale.

    Parameters
    ----------
    image : (H, W) or (H, W, C) uint8, uint16, float32 or float64
    low, high : float
        Percentiles, 0..100, ``low < high``.
    per_channel : bool
        Percentiles of each channel (default) or of all channels together.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype; values beyond the percentiles are clipped to 0 and full
        scale (1.0 for floats). A flat channel is returned as zeros.

    Examples
    --------
    >>> img = np.arange(1000, dtype=np.uint16).reshape(20, 50)
    >>> out = normalize_percentile(img, low=0, high=100)
    >>> int(out.min()), int(out.max())
    (0, 65535)
    """
    check_image(image, what="normalize")
    if not 0 <= low < high <= 100:
        raise InvalidParameter("percentiles need 0 <= low < high <= 100")
    if image.ndim == 2 or not per_channel:
        return _stretch(image, *percentiles(image, low, high))
    return np.stack(
        [
            _stretch(image[..., c], *percentiles(np.ascontiguousarray(image[..., c]), low, high))
            for c in range(image.shape[2])
        ],
        axis=-1,
    )


def _stretch(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    top = full_scale(image.dtype)
    if hi <= lo:
        return np.zeros_like(image)
    if image.dtype in (np.uint8, np.uint16):
        # a lookup table: one multiply per possible value instead of per pixel
        values = np.arange(int(top) + 1, dtype=np.float32)
        lut = np.clip((values - lo) * (top / (hi - lo)) + 0.5, 0, top).astype(image.dtype)
        if image.dtype == np.uint8:
            import cv2

            return np.asarray(cv2.LUT(image, lut))
        return np.take(lut, image)
    out = (image.astype(np.float32) - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    return np.clip(out, 0.0, 1.0).astype(image.dtype, copy=False)


# -- channels ----------------------------------------------------------------------------


def select_channels(image: np.ndarray, channels: Sequence[int]) -> np.ndarray:
    """Keep the listed channels, in the given order (multi-channel fluorescence).

    Parameters
    ----------
    image : (H, W) or (H, W, C), any supported dtype
    channels : sequence of int
        0-based channel indices; negative indices count from the end.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` for one channel, else ``(H, W, len(channels))``; same dtype.

    Examples
    --------
    >>> rgb = np.zeros((4, 4, 3), np.uint8); rgb[..., 2] = 9
    >>> select_channels(rgb, [2]).max()
    np.uint8(9)
    """
    check_image(image, what="channels")
    n = n_channels(image)
    if not channels:
        raise InvalidParameter("select at least one channel")
    picked = []
    for c in channels:
        if not -n <= c < n:
            raise InvalidParameter(
                f"channel {c} does not exist: the image has {n} channel(s) (0..{n - 1})",
                channels=n,
            )
        picked.append(c % n)
    if image.ndim == 2:
        return image.copy()
    if len(picked) == 1:
        return np.ascontiguousarray(image[..., picked[0]])
    return np.ascontiguousarray(image[..., picked])


__all__ = ["normalize_percentile", "percentiles", "select_channels"]
