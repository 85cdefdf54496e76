"""Thresholds for segmentation: the smoothed working image, global methods (Otsu, Li,
triangle, ...), local (adaptive) thresholds, and a robust noise estimate.

Intensities are compared on the common scale (integers / full scale, floats as they
are), so thresholds and offsets mean the same for 8-bit, 16-bit and float inputs.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis._arrays import check_image, gaussian64, squeeze, to_float

ThresholdMethod = Literal["otsu", "li", "triangle", "yen", "isodata", "mean", "local"]
Foreground = Literal["bright", "dark"]

#: pixels looked at by iterative threshold methods (li) on large images
_SAMPLE = 1_000_000


def prepare(image: np.ndarray, *, sigma: float = 1.0) -> np.ndarray:
    """The image segmentation works on: one channel, float32 on the common scale,
    Gaussian-smoothed with ``sigma`` pixels (0 = no smoothing).

    Parameters
    ----------
    image : (H, W) or (H, W, 1) uint8, uint16, float32 or float64

    Returns
    -------
    numpy.ndarray
        float32 (H, W).

    Examples
    --------
    >>> prepare(np.full((4, 4), 255, np.uint8), sigma=0).max()
    np.float32(1.0)
    """
    check_image(image, channels=(1,), what="segmentation")
    work = to_float(squeeze(image))
    if sigma > 0:
        # in float64, then rounded to float32: OpenCV filters rows, then columns, and in
        # float32 the rounding of the two orders differs in the last bit, so a turned or
        # mirrored image got other values, and Otsu's threshold could move by a bin (the
        # same objects segmented 1-10 px larger or smaller); float64's differences vanish
        # in the rounding, and every method sees the same values in any orientation.
        # A block of rows at a time: the float64 copies never hold the whole image
        work = gaussian64(work, sigma)
    elif work is image:
        work = work.copy()
    return work


def threshold_value(values: np.ndarray, *, method: ThresholdMethod = "otsu") -> float:
    """A global threshold of ``values`` (any float array) by a histogram method.

    ``otsu``, ``li``, ``triangle``, ``yen``, ``isodata`` and ``mean`` are scikit-image's
    (Li on a fixed sample of at most one million pixels). Returns the threshold in the
    units of ``values``; a constant image returns its value.
    """
    from skimage import filters

    flat = values.ravel()
    lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:
        return hi
    fns: dict[str, Any] = {
        "otsu": filters.threshold_otsu,
        "triangle": filters.threshold_triangle,
        "yen": filters.threshold_yen,
        "isodata": filters.threshold_isodata,
        "mean": filters.threshold_mean,
    }
    if method == "li":
        step = max(1, flat.size // _SAMPLE)
        return float(filters.threshold_li(flat[::step]))
    if method not in fns:
        raise InvalidParameter(f"{method!r} is not a global threshold method", known=sorted(fns))
    return float(fns[method](flat))


def threshold(
    values: np.ndarray,
    *,
    method: ThresholdMethod = "otsu",
    foreground: Foreground = "bright",
    value: float | None = None,
    block_size: int = 51,
    offset: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Foreground mask of a prepared (float, one-channel) image.

    Parameters
    ----------
    values : (H, W) float32
        Usually :func:`prepare`'s output.
    method : {"otsu", "li", "triangle", "yen", "isodata", "mean", "local"}
        ``local``: each pixel against the mean of its ``block_size`` x ``block_size``
        neighbourhood plus ``offset`` (minus for dark objects).
    foreground : {"bright", "dark"}
        Fluorescence nuclei are bright; stained nuclei on a brightfield grey image dark.
    value : float, optional
        A fixed global threshold (common scale); overrides ``method``.
    block_size : int
        Odd neighbourhood side of the local method, pixels.
    offset : float
        Local method: how much brighter (darker) than the neighbourhood mean, common scale.

    Returns
    -------
    (mask, threshold)
        bool (H, W) mask and the global threshold used (NaN for ``local``).
    """
    import cv2

    if value is not None:
        t = float(value)
    elif method == "local":
        if block_size < 3 or block_size % 2 == 0:
            raise InvalidParameter("block_size must be an odd number >= 3")
        local = np.asarray(cv2.blur(values, (block_size, block_size)))
        if foreground == "bright":
            return values > local + np.float32(offset), float("nan")
        return values < local - np.float32(offset), float("nan")
    else:
        t = threshold_value(values, method=method)
    mask = values > t if foreground == "bright" else values < t
    return mask, t


def noise_sigma(image: np.ndarray) -> float:
    """Robust noise standard deviation of a one-channel image on the common scale:
    the median absolute horizontal difference / (0.6745 x sqrt(2)), from every 4th row."""
    work = to_float(squeeze(image))[::4]
    if work.shape[1] < 2:
        return 0.0
    diffs = np.abs(np.diff(work, axis=1)).ravel()
    return float(np.median(diffs) / (0.6745 * np.sqrt(2.0)))


__all__ = [
    "Foreground",
    "ThresholdMethod",
    "noise_sigma",
    "prepare",
    "threshold",
    "threshold_value",
]
