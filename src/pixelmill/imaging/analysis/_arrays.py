"""dtype and shape rules shared by every analysis function.

Images are numpy arrays, rows x columns (``(H, W)``) or rows x columns x channels
(``(H, W, C)``). Integer images are scaled by their dtype's maximum when an operation
needs intensities on a common scale (``uint8`` / 255, ``uint16`` / 65535); float images
are taken to be on that scale already (0 = black, 1 = full scale) and are not clipped
unless an operation says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pixelmill.errors import InvalidParameter

#: dtypes every analysis function accepts; others are converted through float32
SUPPORTED = (np.uint8, np.uint16, np.float32, np.float64)


def full_scale(dtype: Any) -> float:
    """The value that means "full intensity" for ``dtype``: 255 for uint8, 65535 for
    uint16, the type maximum for other integers, 1.0 for floats and bool.

    Examples
    --------
    >>> full_scale(np.uint16)
    65535.0
    """
    dt = np.dtype(dtype)
    if dt == np.bool_ or dt.kind == "f":
        return 1.0
    if dt.kind in "ui":
        return float(np.iinfo(dt).max)
    raise InvalidParameter(f"unsupported pixel type {dt}")


def check_image(
    image: np.ndarray, *, channels: tuple[int, ...] | None = None, what: str = "this operation"
) -> np.ndarray:
    """Validate an image array: 2-D, or 3-D with channels last; not empty; numeric.

    ``channels`` restricts the allowed channel counts (1 means a 2-D image or a single
    channel). Raises :class:`~pixelmill.errors.InvalidParameter` (422) otherwise.
    """
    if not isinstance(image, np.ndarray):
        raise InvalidParameter(f"{what} needs a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3):
        raise InvalidParameter(f"{what} needs a 2-D or 3-D (rows, cols, channels) image")
    if image.shape[0] == 0 or image.shape[1] == 0 or (image.ndim == 3 and image.shape[2] == 0):
        raise InvalidParameter(f"{what} got an empty image {image.shape}")
    if image.dtype.kind not in "buif":
        raise InvalidParameter(f"{what} cannot use pixel type {image.dtype}")
    if channels is not None:
        n = n_channels(image)
        if n not in channels:
            wanted = " or ".join(str(c) for c in channels)
            raise InvalidParameter(
                f"{what} needs an image with {wanted} channel(s); this one has {n}",
                channels=n,
            )
    return image


def n_channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else int(image.shape[2])


def squeeze(image: np.ndarray) -> np.ndarray:
    """``(H, W, 1)`` → ``(H, W)``; other shapes unchanged (no copy)."""
    return image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image


def to_float(image: np.ndarray) -> np.ndarray:
    """float32 on the common scale (integers / their full scale; floats as they are)."""
    if image.dtype == np.float32:
        return image
    if image.dtype.kind == "f":
        return image.astype(np.float32)
    out = image.astype(np.float32)
    out *= np.float32(1.0 / full_scale(image.dtype))  # in place: one float32 copy, not two
    return out


def from_float(values: np.ndarray, dtype: Any, *, clip: bool = True) -> np.ndarray:
    """Back from the common float scale to ``dtype`` (integers rounded and saturated;
    floats clipped to 0..1 only when ``clip``)."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        out = np.clip(values, 0.0, 1.0) if clip else values
        return out.astype(dt, copy=False)
    top = full_scale(dt)
    lo = 0.0 if dt.kind == "u" else float(np.iinfo(dt).min)
    return np.clip(np.rint(values * top), lo, top).astype(dt)


def to_uint16(image: np.ndarray) -> np.ndarray:
    """Any image as uint16 on the common scale (uint8 x 257; floats clipped to 0..1)."""
    if image.dtype == np.uint16:
        return image
    if image.dtype == np.uint8:
        return image.astype(np.uint16) * np.uint16(257)
    return from_float(to_float(image), np.uint16)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Any image as uint8 on the common scale (uint16 / 257; floats clipped to 0..1)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return from_float(to_float(image), np.uint8)


def back_to(values: np.ndarray, like: np.dtype[Any]) -> np.ndarray:
    """A result computed as uint16/float32 returned in the caller's dtype ``like``."""
    if values.dtype == like:
        return values
    if like == np.uint8:
        return to_uint8(values)
    if like == np.uint16:
        return to_uint16(values)
    if like.kind == "f":
        f = to_float(values) if values.dtype.kind != "f" else values
        return f.astype(like, copy=False)
    return from_float(to_float(values), like)


#: pixels in a block of rows of the per-pixel maths done a block at a time
#: (:func:`row_blocks`): its float temporaries stay a few MB whatever the image's size
BLOCK_PIXELS = 1 << 20


def row_blocks(shape: tuple[int, ...], *, pixels: int = BLOCK_PIXELS) -> Iterator[slice]:
    """Slices of consecutive rows of an image of ``shape`` (rows, cols, ...), each of
    about ``pixels`` pixels (at least one row), covering every row in order."""
    rows = int(shape[0])
    step = max(1, pixels // max(1, int(shape[1]) if len(shape) > 1 else 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def spill(rows: slice, total: int) -> slice:
    """``rows`` and the row after it (if any): a vectorised per-pixel loop (OpenCV's
    ``transform``, numpy's) leaves the last few pixels of an array to a scalar loop
    whose last bit may differ, so a block computed with one row more and cut back gives
    what the whole image gives, to the bit."""
    return slice(rows.start, min(rows.stop + 1, total))


def gaussian64(
    values: np.ndarray, sigma: float, finish: Callable[[np.ndarray, slice], None] | None = None
) -> np.ndarray:
    """OpenCV's Gaussian blur of a one-channel image computed in float64 and returned as
    float32, a block of rows at a time (each with ``4 sigma`` rows beyond it either side,
    so every row is what a blur of the whole image gives, to the bit): the float64 copies
    (16 bytes a pixel) never exist for the whole image. ``finish(block, rows)`` may
    change each float64 block in place before it is rounded to float32."""
    import cv2

    out = np.empty(values.shape, np.float32)
    halo = int(np.ceil(4 * sigma)) + 2
    for rows in row_blocks(values.shape):
        lo, hi = max(0, rows.start - halo), min(values.shape[0], rows.stop + halo)
        blurred = cv2.GaussianBlur(
            values[lo:hi].astype(np.float64), (0, 0), sigmaX=float(sigma), sigmaY=float(sigma)
        )
        block = blurred[rows.start - lo : rows.stop - lo]
        if finish is not None:
            finish(block, rows)
        out[rows] = block
    return out


def label_dtype(count: int) -> np.dtype[Any]:
    """uint16 when the labels fit (fewer than 65,536 objects), else uint32."""
    return np.dtype(np.uint16) if count < 65536 else np.dtype(np.uint32)


def map_channels(image: np.ndarray, fn: Any) -> np.ndarray:
    """``fn`` applied to each channel of an (H, W, C) image and stacked back; an (H, W)
    image is passed whole."""
    if image.ndim == 2:
        return np.asarray(fn(image))
    return np.stack([fn(np.ascontiguousarray(image[..., c])) for c in range(image.shape[2])], -1)
