"""dtype and shape rules shared by every analysis function.

Images are numpy arrays, rows x columns (``(H, W)``) or rows x columns x channels
(``(H, W, C)``). Integer images are scaled by their dtype's maximum when an operation
needs intensities on a common scale (``uint8`` / 255, ``uint16`` / 65535); float images
are taken to be on that scale already (0 = black, 1 = full scale) and are not clipped
unless an operation says so.
"""

from __future__ import annotations

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
    scale = np.float32(1.0 / full_scale(image.dtype))
    return image.astype(np.float32) * scale


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


def label_dtype(count: int) -> np.dtype[Any]:
    """uint16 when the labels fit (fewer than 65,536 objects), else uint32."""
    return np.dtype(np.uint16) if count < 65536 else np.dtype(np.uint32)


def map_channels(image: np.ndarray, fn: Any) -> np.ndarray:
    """``fn`` applied to each channel of an (H, W, C) image and stacked back; an (H, W)
    image is passed whole."""
    if image.ndim == 2:
        return np.asarray(fn(image))
    return np.stack([fn(np.ascontiguousarray(image[..., c])) for c in range(image.shape[2])], -1)
