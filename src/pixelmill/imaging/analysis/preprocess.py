"""Preprocessing: contrast (CLAHE), denoising, unsharp masking; background subtraction
(:mod:`.background`), percentile normalisation and channel selection (:mod:`.intensity`)
are re-exported here, where callers have always found them.

Every function takes an image ``(H, W)`` or ``(H, W, C)`` of dtype uint8, uint16, float32
or float64 and returns the same shape and dtype (channel selection excepted). Strength
parameters that are intensities are given as a fraction of full scale (0..1), so one
value means the same on 8-bit, 16-bit and float images; sizes are in pixels. The heavy
lifting is OpenCV's (imported lazily); the wrappers add no copies on the fast paths so
they run at the library's own speed (see ``benchmarks/analysis.py``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis._arrays import (
    back_to,
    check_image,
    map_channels,
    n_channels,
    to_float,
    to_uint8,
    to_uint16,
)
from pixelmill.imaging.analysis.background import BackgroundMethod, subtract_background
from pixelmill.imaging.analysis.intensity import (
    normalize_percentile,
    percentiles,
    select_channels,
)

DenoiseMethod = Literal["nlm", "bilateral", "median", "gaussian"]


# -- CLAHE -------------------------------------------------------------------------------


def clahe(
    image: np.ndarray,
    *,
    clip_limit: float = 2.0,
    tiles: int = 8,
    per_channel: bool = False,
) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (OpenCV).

    Parameters
    ----------
    image : (H, W) or (H, W, C) uint8, uint16, float32 or float64
        A 3-channel image is taken as RGB and equalised on the lightness (L of CIE Lab)
        so hues are kept, unless ``per_channel``; other channel counts are equalised
        channel by channel. Floats are taken as 0..1 and clipped to it.
    clip_limit : float
        Contrast limit relative to a flat histogram (OpenCV's ``clipLimit``; Fiji's
        "maximum slope"). 1 means no contrast enhancement.
    tiles : int
        Number of tiles per side of the contextual regions.
    per_channel : bool
        Equalise each channel on its own (multi-channel fluorescence).

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``image``.

    Examples
    --------
    >>> img = (np.arange(64 * 64) % 97).astype(np.uint8).reshape(64, 64)
    >>> clahe(img, clip_limit=3.0).dtype
    dtype('uint8')
    """
    import cv2

    check_image(image, what="clahe")
    if clip_limit <= 0 or tiles < 1:
        raise InvalidParameter("clahe needs clip_limit > 0 and tiles >= 1")
    dtype = image.dtype
    work = image if dtype in (np.uint8, np.uint16) else to_uint16(image)
    engine = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(tiles, tiles))
    if n_channels(work) == 3 and not per_channel:
        out = _clahe_rgb(work, engine)
    else:
        out = map_channels(work, engine.apply)
    return back_to(out, dtype)


def _clahe_rgb(rgb: np.ndarray, engine: Any) -> np.ndarray:
    import cv2

    if rgb.dtype == np.uint8:
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
        lab[..., 0] = engine.apply(lab[..., 0])
        return np.asarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))
    # 16-bit: Lab in float32 (L 0..100), L equalised at 16 bits, then back
    lab = cv2.cvtColor(rgb.astype(np.float32) * np.float32(1 / 65535), cv2.COLOR_RGB2LAB)
    lightness = np.clip(lab[..., 0] * 655.35, 0, 65535).astype(np.uint16)
    lab[..., 0] = engine.apply(lightness).astype(np.float32) / np.float32(655.35)
    out = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return np.clip(out * 65535 + 0.5, 0, 65535).astype(np.uint16)


# -- denoising ---------------------------------------------------------------------------


def denoise(
    image: np.ndarray,
    *,
    method: DenoiseMethod = "median",
    size: int = 3,
    strength: float = 0.04,
    sigma: float = 3.0,
) -> np.ndarray:
    """Remove noise while keeping edges.

    Parameters
    ----------
    image : (H, W) or (H, W, C) uint8, uint16, float32 or float64
    method : {"median", "bilateral", "nlm", "gaussian"}
        ``median``: median of a ``size`` x ``size`` square (salt-and-pepper, shot noise).
        ``bilateral``: edge-preserving smoothing; ``sigma`` is the spatial sigma in pixels,
        ``strength`` the intensity sigma as a fraction of full scale.
        ``nlm``: non-local means (OpenCV fastNlMeans, 7 px patches, 21 px search);
        ``strength`` is the filter strength *h* as a fraction of full scale (0.04 ≈ h=10
        on 8-bit). Floats are processed at 16 bits; 16-bit colour channel by channel.
        ``gaussian``: Gaussian blur with ``sigma`` in pixels.
    size : int
        Median window side in pixels (odd, >= 3).
    strength : float
        Intensity scale of bilateral / nlm, fraction of full scale (0..1).
    sigma : float
        Spatial sigma of bilateral and gaussian, pixels.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``image``.

    Examples
    --------
    >>> noisy = np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)
    >>> denoise(noisy, method="median", size=3).shape
    (32, 32)
    """
    check_image(image, what="denoise")
    if method == "median":
        return _median(image, size)
    if method == "bilateral":
        return _bilateral(image, strength, sigma)
    if method == "nlm":
        return _nlm(image, strength)
    if method == "gaussian":
        import cv2

        if sigma <= 0:
            raise InvalidParameter("gaussian denoising needs sigma > 0")
        work = image if image.dtype != np.float64 else image.astype(np.float32)
        out = cv2.GaussianBlur(work, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma))
        return np.asarray(out).astype(image.dtype, copy=False)
    raise InvalidParameter(f"unknown denoising method {method!r}")


def _median(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if size < 3 or size % 2 == 0:
        raise InvalidParameter("median size must be an odd number >= 3")
    channels = n_channels(image)
    native = image.dtype == np.uint8 or (image.dtype in (np.uint16, np.float32) and size <= 5)
    if native and channels in (1, 3, 4):
        return np.asarray(cv2.medianBlur(image, size))
    if native:
        return map_channels(image, lambda ch: cv2.medianBlur(ch, size))
    from scipy import ndimage

    footprint = (size, size) if image.ndim == 2 else (size, size, 1)
    return np.asarray(ndimage.median_filter(image, size=footprint, mode="reflect"))


def _bilateral(image: np.ndarray, strength: float, sigma: float) -> np.ndarray:
    import cv2

    if strength <= 0 or sigma <= 0:
        raise InvalidParameter("bilateral denoising needs strength > 0 and sigma > 0")
    d = int(2 * round(2 * sigma) + 1)

    def one(arr: np.ndarray) -> np.ndarray:
        if arr.dtype == np.uint8:
            return np.asarray(cv2.bilateralFilter(arr, d, strength * 255.0, sigma))
        return np.asarray(cv2.bilateralFilter(to_float(arr), d, strength, sigma))

    work = image if image.dtype == np.uint8 else to_float(image)
    out = one(work) if n_channels(work) in (1, 3) else map_channels(work, one)
    return back_to(out, image.dtype)


def _nlm(image: np.ndarray, strength: float) -> np.ndarray:
    import cv2

    if strength <= 0:
        raise InvalidParameter("nlm denoising needs strength > 0")
    channels = n_channels(image)
    if image.dtype == np.uint8:
        h = strength * 255.0
        if channels == 3:
            return np.asarray(cv2.fastNlMeansDenoisingColored(image, None, h, h, 7, 21))
        return map_channels(image, lambda ch: cv2.fastNlMeansDenoising(ch, None, h, 7, 21))
    work = to_uint16(image)
    h16 = [strength * 65535.0]

    def one(ch: np.ndarray) -> np.ndarray:
        return np.asarray(cv2.fastNlMeansDenoising(ch, h16, None, 7, 21, normType=cv2.NORM_L1))

    return back_to(map_channels(work, one), image.dtype)


# -- unsharp mask ------------------------------------------------------------------------


def unsharp_mask(image: np.ndarray, *, sigma: float = 2.0, amount: float = 1.0) -> np.ndarray:
    """Classical unsharp mask: ``image + amount x (image - gaussian(image, sigma))``.

    Fiji's *Unsharp Mask* with mask weight *w* is ``amount = w / (1 - w)``.

    Parameters
    ----------
    image : (H, W) or (H, W, C) uint8, uint16, float32 or float64
        Every channel is sharpened. Integers saturate at 0 and full scale; floats are
        not clipped.
    sigma : float
        Gaussian sigma of the blurred mask, pixels.
    amount : float
        Gain of the detail added back (0 = unchanged).

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``image``.

    Examples
    --------
    >>> step = np.zeros((8, 8), np.uint8); step[:, 4:] = 200
    >>> int(unsharp_mask(step, sigma=1, amount=1)[0, 4]) > 200
    True
    """
    import cv2

    check_image(image, what="unsharp_mask")
    if sigma <= 0 or amount < 0:
        raise InvalidParameter("unsharp_mask needs sigma > 0 and amount >= 0")
    work = image.astype(np.float32) if image.dtype == np.float64 else image
    blurred = cv2.GaussianBlur(work, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma))
    out = cv2.addWeighted(work, 1.0 + amount, blurred, -amount, 0.0)
    return np.asarray(out).astype(image.dtype, copy=False)


__all__ = [
    "BackgroundMethod",
    "clahe",
    "denoise",
    "normalize_percentile",
    "percentiles",
    "select_channels",
    "subtract_background",
    "to_uint8",
    "unsharp_mask",
]
