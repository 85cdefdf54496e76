"""Placeholders shown while an image loads: a BlurHash string and a tiny LQIP data URI.

BlurHash (https://blurha.sh) is the reference algorithm, vectorised with numpy: the
image's average colour and its lowest cosine components in linear light, quantised
and written in base 83. The LQIP is the image a few pixels wide, as a WebP data URI,
for a CSS-blurred ``<img>`` until the real one arrives.
"""

from __future__ import annotations

import base64

import numpy as np
import pyvips

_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - i - 1)) % 83] for i in range(length))


def _to_linear(srgb: np.ndarray) -> np.ndarray:
    v = srgb / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _to_srgb(linear: float) -> int:
    v = min(1.0, max(0.0, linear))
    out = v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055
    return int(out * 255 + 0.5)


def blurhash(pixels: np.ndarray, *, x_components: int = 4, y_components: int = 3) -> str:
    """The BlurHash of an sRGB image, ``pixels`` uint8 (rows, cols, 3); a small image
    (about 32 px) gives the same hash as the full one at a fraction of the cost.

    Examples
    --------
    >>> blurhash(np.full((8, 8, 3), 255, np.uint8), x_components=1, y_components=1)
    '00TSUA'
    """
    if not (1 <= x_components <= 9 and 1 <= y_components <= 9):
        raise ValueError("BlurHash takes 1..9 components on each axis")
    rows, cols = pixels.shape[:2]
    linear = _to_linear(pixels[..., :3].astype(np.float64))
    cos_x = np.cos(np.pi * np.outer(np.arange(x_components), np.arange(cols)) / cols)
    cos_y = np.cos(np.pi * np.outer(np.arange(y_components), np.arange(rows)) / rows)
    # factors[j, i, c] = sum over y, x of cos_y[j, y] * cos_x[i, x] * linear[y, x, c]
    factors = np.einsum("jy,ix,yxc->jic", cos_y, cos_x, linear) / (rows * cols)
    flat = factors.reshape(-1, 3)
    flat[1:] *= 2  # every component but the average carries a norm of 2
    dc, ac = flat[0], flat[1:]
    size_flag = (x_components - 1) + (y_components - 1) * 9
    out = _base83(size_flag, 1)
    if len(ac):
        peak = float(np.abs(ac).max())
        quant_max = int(max(0, min(82, np.floor(peak * 166 - 0.5))))
        scale = (quant_max + 1) / 166
        out += _base83(quant_max, 1)
    else:
        scale = 1.0
        out += _base83(0, 1)
    out += _base83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4)
    for r, g, b in ac:
        q = [
            int(max(0, min(18, np.floor(np.sign(v) * abs(v / scale) ** 0.5 * 9 + 9.5))))
            for v in (r, g, b)
        ]
        out += _base83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return out


def lqip(image: pyvips.Image, *, width: int = 16, quality: int = 40) -> str:
    """A ``data:image/webp;base64,...`` URI of ``image`` scaled to ``width`` pixels."""
    small = image.thumbnail_image(width, height=width * 4, size="down")
    body = bytes(small.write_to_buffer(".webp", Q=quality, keep="none", effort=4))
    return "data:image/webp;base64," + base64.b64encode(body).decode("ascii")


def placeholders_of(small: pyvips.Image) -> dict[str, str]:
    """The BlurHash (4 components along the longer side) and the LQIP data URI of a small
    display-ready (8-bit sRGB or grey) image."""
    small = small.copy_memory()  # read once: the source may be sequential
    if small.bands >= 3:
        rgb = small.extract_band(0, n=3)
    else:
        rgb = small.extract_band(0).bandjoin([small.extract_band(0)] * 2)
    pixels = np.asarray(rgb.numpy())
    rows, cols = pixels.shape[:2]
    x, y = (
        (4, max(1, min(9, round(4 * rows / cols))))
        if cols >= rows
        else (max(1, min(9, round(4 * cols / rows))), 4)
    )
    return {
        "blurhash": blurhash(pixels, x_components=x, y_components=y),
        "lqip": lqip(small),
    }
