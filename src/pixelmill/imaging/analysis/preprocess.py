"""Preprocessing: contrast (CLAHE), denoising, unsharp masking, background subtraction,
percentile normalisation and channel selection.

Every function takes an image ``(H, W)`` or ``(H, W, C)`` of dtype uint8, uint16, float32
or float64 and returns the same shape and dtype (channel selection excepted). Strength
parameters that are intensities are given as a fraction of full scale (0..1), so one
value means the same on 8-bit, 16-bit and float images; sizes are in pixels. The heavy
lifting is OpenCV's (imported lazily); the wrappers add no copies on the fast paths so
they run at the library's own speed (see ``benchmarks/analysis.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis._arrays import (
    back_to,
    check_image,
    full_scale,
    n_channels,
    to_float,
    to_uint8,
    to_uint16,
)

DenoiseMethod = Literal["nlm", "bilateral", "median", "gaussian"]
BackgroundMethod = Literal["rolling_ball", "tophat"]


def _per_channel(image: np.ndarray, fn: Any) -> np.ndarray:
    if image.ndim == 2:
        return np.asarray(fn(image))
    return np.stack([fn(np.ascontiguousarray(image[..., c])) for c in range(image.shape[2])], -1)


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
        out = _per_channel(work, engine.apply)
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
        return _per_channel(image, lambda ch: cv2.medianBlur(ch, size))
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
    out = one(work) if n_channels(work) in (1, 3) else _per_channel(work, one)
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
        return _per_channel(image, lambda ch: cv2.fastNlMeansDenoising(ch, None, h, 7, 21))
    work = to_uint16(image)
    h16 = [strength * 65535.0]

    def one(ch: np.ndarray) -> np.ndarray:
        return np.asarray(cv2.fastNlMeansDenoising(ch, h16, None, 7, 21, normType=cv2.NORM_L1))

    return back_to(_per_channel(work, one), image.dtype)


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


# -- background --------------------------------------------------------------------------


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

    return _per_channel(work, one).astype(image.dtype, copy=False)


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


# -- normalisation -----------------------------------------------------------------------


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


__all__ = [
    "clahe",
    "denoise",
    "normalize_percentile",
    "percentiles",
    "select_channels",
    "subtract_background",
    "to_uint8",
    "unsharp_mask",
]
