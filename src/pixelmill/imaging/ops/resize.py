"""resize: scale to a width and/or height with a fit mode (sharp's semantics).

``cover`` fills the box and crops by gravity, smart gravity or a focal point;
``contain`` fits inside and pads with ``background``; ``fill`` stretches; ``inside``
fits inside; ``outside`` covers without cropping. As the first step of a pipeline it
decodes with shrink-on-load (JPEG DCT scaling, WebP scale, pyramid levels).

Big JPEG thumbnails decode through OpenCV's ``IMREAD_REDUCED_*`` (libjpeg-turbo DCT
scaling by the largest power of two that keeps the needed size, as sharp's
``fastShrinkOnLoad``) straight to RGB, and OpenCV's ``INTER_AREA`` does the final resize:
as fast as the best single-thread in-library path we measured, where libvips' own
shrink-on-load keeps a 2x margin and decodes four times the pixels (see
docs/benchmarks.md, "Render"). Crops, padding and later steps stay in libvips.
"""

from __future__ import annotations

import io
import math
import os
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import pyvips
from pydantic import Field, model_validator

from pixelmill.imaging.geometry import (
    COMPASS,
    Colour,
    Gravity,
    SmartGravity,
    focal_offset,
    gravity_offset,
)
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params

if TYPE_CHECKING:
    import numpy as np

MAX_SIDE = 16384
_HUGE = 10_000_000  # "unbounded" for libvips thumbnail
#: JPEG files up to this size are read whole before decoding (fast); bigger ones stream
_READ_WHOLE_BYTES = 8 * 1024 * 1024


class ResizeParams(Params):
    width: int | None = Field(None, ge=1, le=MAX_SIDE, description="Target width in pixels.")
    height: int | None = Field(None, ge=1, le=MAX_SIDE, description="Target height in pixels.")
    fit: Literal["cover", "contain", "fill", "inside", "outside"] = "cover"
    gravity: Gravity | SmartGravity = "centre"
    focal: tuple[float, float] | None = Field(
        None, description="Focal point (x, y) as fractions 0..1 of the image; overrides gravity."
    )
    background: Colour = (0, 0, 0, 255)
    enlarge: bool = Field(True, description="Allow output larger than the input.")

    @model_validator(mode="after")
    def _check(self) -> ResizeParams:
        if self.width is None and self.height is None:
            raise ValueError("give width, height or both")
        if self.focal is not None and not all(0.0 <= v <= 1.0 for v in self.focal):
            raise ValueError("focal point coordinates are fractions between 0 and 1")
        return self


Source: TypeAlias = "pyvips.Image | bytes | str | _Reduced"


def _thumb(src: Source, width: int, **kw: Any) -> pyvips.Image:
    if isinstance(src, _Reduced):
        return _thumb_reduced(src, width, **kw)
    if isinstance(src, pyvips.Image):
        return src.thumbnail_image(width, **kw)
    if isinstance(src, bytes):
        return pyvips.Image.thumbnail_buffer(src, width, **kw)
    return pyvips.Image.thumbnail(src, width, **kw)


def _oriented_size(src: Source) -> tuple[int, int]:
    if isinstance(src, _Reduced):
        return src.size
    if isinstance(src, pyvips.Image):
        return src.width, src.height
    head = (
        pyvips.Image.new_from_buffer(src, "")
        if isinstance(src, bytes)
        else pyvips.Image.new_from_file(src)
    )
    orientation = head.get("orientation") if "orientation" in head.get_fields() else 1
    return (head.height, head.width) if orientation in (5, 6, 7, 8) else (head.width, head.height)


@register
class Resize(Operation[ResizeParams]):
    name = "resize"
    Params = ResizeParams
    summary = "Scale to width/height with fit cover|contain|fill|inside|outside."
    geometric = True

    def apply(self, image: pyvips.Image, params: ResizeParams, ctx: OpContext) -> pyvips.Image:
        return self._run(image, params)

    def load(self, source: bytes | str, params: ResizeParams, ctx: OpContext) -> pyvips.Image:
        reduced = _reduced_jpeg(source, params)
        return self._run(source if reduced is None else reduced, params)

    def _run(self, src: Source, p: ResizeParams) -> pyvips.Image:
        size = "both" if p.enlarge else "down"
        w, h = p.width, p.height
        if w is None or h is None:
            return _thumb(src, w or _HUGE, height=h or _HUGE, size=size)
        if p.fit == "fill":
            return _thumb(src, w, height=h, size="force" if p.enlarge else "down")
        if p.fit == "inside":
            return _thumb(src, w, height=h, size=size)
        if p.fit == "contain":
            out = _thumb(src, w, height=h, size=size)
            if (out.width, out.height) == (w, h):
                return out
            return _embed(out, w, h, p.gravity, p.background)
        # cover / outside: scale so both sides reach the box
        if p.fit == "cover" and p.focal is None and p.gravity in ("centre", "attention", "entropy"):
            return _thumb(src, w, height=h, crop=p.gravity, size=size)
        sw, sh = _oriented_size(src)
        scale = max(w / sw, h / sh)
        if not p.enlarge:
            scale = min(scale, 1.0)
        tw, th = max(1, math.ceil(sw * scale - 1e-6)), max(1, math.ceil(sh * scale - 1e-6))
        out = _thumb(src, tw, height=th, size=size)
        if p.fit == "outside":
            return out
        cw, ch = min(w, out.width), min(h, out.height)
        if p.focal is not None:
            left = focal_offset(p.focal[0], out.width, cw)
            top = focal_offset(p.focal[1], out.height, ch)
        else:
            grav = p.gravity if p.gravity in COMPASS else "centre"
            left = gravity_offset(grav, out.width, cw, "x")
            top = gravity_offset(grav, out.height, ch, "y")
        return out.extract_area(left, top, cw, ch)


def _embed(
    image: pyvips.Image, w: int, h: int, gravity: str, bg: tuple[int, int, int, int]
) -> pyvips.Image:
    compass = COMPASS.get(gravity, "centre")
    if bg[3] < 255 and not image.hasalpha():
        image = image.addalpha()
    background = list(bg[: image.bands]) if image.bands >= 3 else [bg[0], bg[3]][: image.bands]
    return image.gravity(compass, w, h, extend="background", background=background)


# -- the JPEG fast path ------------------------------------------------------------------
#: EXIF orientation -> OpenCV calls that make stored pixels upright (as libvips autorot)
_ORIENT: dict[int, tuple[str, ...]] = {
    2: ("flip1",),
    3: ("rot180",),
    4: ("flip0",),
    5: ("transpose",),
    6: ("rot90cw",),
    7: ("transpose", "rot180"),
    8: ("rot90ccw",),
}


class _Reduced:
    """A JPEG decoded already shrunk by 2, 4 or 8 in the DCT (see :func:`_reduced_jpeg`).

    ``pixels`` is uint8, (rows, cols, 3) RGB or (rows, cols) grey, in the *stored*
    orientation; ``size`` is the full *upright* (width, height), so output sizes are
    computed from the original and do not pick up the rounding of the shrunk one.
    Resizing happens before orientation (fewer pixels to turn).
    """

    __slots__ = ("info", "orientation", "pixels", "size")

    def __init__(
        self, pixels: np.ndarray, size: tuple[int, int], orientation: int, info: dict[str, Any]
    ) -> None:
        self.pixels = pixels
        self.size = size
        self.orientation = orientation
        self.info = info

    def resized(self, width: int, height: int) -> pyvips.Image:
        """The upright image at exactly ``width`` x ``height`` (area-averaged when shrinking)."""
        import cv2

        turned = self.orientation in (5, 6, 7, 8)
        stored = (height, width) if turned else (width, height)
        rows, cols = self.pixels.shape[:2]
        if stored == (cols, rows):
            pixels = self.pixels
        else:
            shrink = stored[0] <= cols and stored[1] <= rows
            interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
            pixels = cv2.resize(self.pixels, stored, interpolation=interpolation)
        return self._vips(pixels)

    def image(self) -> pyvips.Image:
        """The whole reduced image, upright."""
        return self._vips(self.pixels)

    def _vips(self, pixels: np.ndarray) -> pyvips.Image:
        import cv2

        for step in _ORIENT.get(self.orientation, ()):
            if step == "transpose":
                pixels = cv2.transpose(pixels)
            elif step.startswith("flip"):
                pixels = cv2.flip(pixels, int(step[-1]))
            else:
                code = {
                    "rot180": cv2.ROTATE_180,
                    "rot90cw": cv2.ROTATE_90_CLOCKWISE,
                    "rot90ccw": cv2.ROTATE_90_COUNTERCLOCKWISE,
                }[step]
                pixels = cv2.rotate(pixels, code)
        rows, cols = pixels.shape[:2]
        bands = 1 if pixels.ndim == 2 else pixels.shape[2]
        # zero-copy: libvips reads the array's memory (and pyvips keeps the array alive);
        # uchar 3 bands is sRGB, 1 band is B_W by default
        image = pyvips.Image.new_from_memory(pixels, cols, rows, bands, "uchar")
        info = self.info
        if "dpi" in info:
            xdpi, ydpi = info["dpi"]
            image = image.copy(xres=float(xdpi) / 25.4, yres=float(ydpi) / 25.4)
        else:
            image = image.copy()  # metadata goes on our own copy, not the shared one
        for name, key in (
            ("exif-data", "exif"),
            ("icc-profile-data", "icc_profile"),
            ("xmp-data", "xmp"),
        ):
            blob = info.get(key)
            if blob:
                image.set_type(pyvips.GValue.blob_type, name, bytes(blob))
        return image


def _thumb_reduced(src: _Reduced, width: int, **kw: Any) -> pyvips.Image:
    """``thumbnail_image`` semantics on a reduced JPEG, sized from the full image."""
    crop = kw.get("crop")
    if crop is not None and crop != "centre":
        return src.image().thumbnail_image(width, **kw)  # smart crops: libvips
    box_h = kw.get("height", _HUGE)
    if kw.get("size") == "force":
        return src.resized(width, box_h)
    tw, th = _fitted(src.size, width, box_h, cover=crop is not None, down=kw.get("size") == "down")
    out = src.resized(tw, th)
    cw, ch = min(width, tw), min(box_h, th)
    if (cw, ch) == (tw, th):
        return out
    # cover: cut the centre of the box (libvips: smartcrop interesting=centre)
    return out.extract_area((tw - cw) // 2, (th - ch) // 2, cw, ch)


def _fitted(
    size: tuple[int, int], width: int, height: int, *, cover: bool, down: bool
) -> tuple[int, int]:
    """The size libvips' thumbnail gives ``size`` for a ``width`` x ``height`` box: one
    scale for both axes, the limiting axis exactly on the box, the other rounded."""
    sw, sh = size
    hscale, vscale = width / sw, height / sh
    by_width = hscale >= vscale if cover else hscale <= vscale
    scale = hscale if by_width else vscale
    if down and scale >= 1:
        return sw, sh
    if by_width:
        return width, max(1, round(sh * scale))
    return max(1, round(sw * scale)), height


def _reduced_jpeg(source: bytes | str, p: ResizeParams) -> _Reduced | None:
    """Decode a JPEG already shrunk by 2, 4 or 8 in the DCT, with OpenCV
    (``IMREAD_REDUCED_*``, straight to RGB, EXIF orientation applied by us later).

    ``None`` when that does not apply and libvips should decode: not a JPEG, CMYK/YCCK,
    an ICC profile that is not sRGB (libvips keeps colour handling in one place), too
    little shrink, enlarging, or anything OpenCV cannot decode.
    """
    if isinstance(source, bytes) and not source.startswith(b"\xff\xd8\xff"):
        return None
    from PIL.JpegImagePlugin import JpegImageFile

    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        # the header only (Pillow parses markers in microseconds); the plugin class
        # directly: Image.open() would warn about decompression bombs on 90+ MP images,
        # which the upload already checked against render.max_pixels
        with JpegImageFile(fp) as im:
            mode, stored = im.mode, im.size
            orientation = int(im.getexif().get(0x0112, 1) or 1)
            info: dict[str, Any] = {
                k: im.info[k] for k in ("dpi", "exif", "icc_profile", "xmp") if k in im.info
            }
    except (OSError, ValueError, SyntaxError):  # SyntaxError: "not a JPEG file"
        return None  # libvips decodes it (and reports what is wrong)
    if mode not in ("RGB", "L") or not _srgb_or_none(info.get("icc_profile")):
        return None
    turned = orientation in (5, 6, 7, 8)
    upright = (stored[1], stored[0]) if turned else stored
    need = _needed_size(upright, p)
    if need is None:
        return None
    if turned:
        need = (need[1], need[0])
    # the largest 1/d DCT scale whose ceil(size / d) still covers the needed size
    fold = min(stored[0] // need[0], stored[1] // need[1])
    denominator = next((d for d in (8, 4, 2) if fold >= d), 1)
    if denominator == 1:
        return None  # no DCT shrink possible: libvips is as fast
    pixels = _decode_reduced(source, denominator, grey=mode == "L")
    expect = (-(-stored[1] // denominator), -(-stored[0] // denominator))
    if pixels is None or pixels.shape[:2] != expect:
        return None
    return _Reduced(pixels, upright, orientation if orientation in _ORIENT else 1, info)


def _decode_reduced(source: bytes | str, denominator: int, *, grey: bool) -> np.ndarray | None:
    import cv2
    import numpy as np

    if grey:
        flags = {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4}.get(
            denominator, cv2.IMREAD_REDUCED_GRAYSCALE_8
        )
    else:
        reduced = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}.get(
            denominator, cv2.IMREAD_REDUCED_COLOR_8
        )
        # RGB out of libjpeg-turbo directly: no BGR->RGB pass
        flags = (reduced & ~cv2.IMREAD_COLOR_BGR) | cv2.IMREAD_COLOR_RGB
    flags |= cv2.IMREAD_IGNORE_ORIENTATION
    try:
        if isinstance(source, bytes):
            return cv2.imdecode(np.frombuffer(source, np.uint8), flags)
        if os.path.getsize(source) <= _READ_WHOLE_BYTES:
            # one read: imread's stdio source reads 4 KB at a time, ~8% more CPU on 12 MP
            return cv2.imdecode(np.fromfile(source, np.uint8), flags)
        # big originals stream from the file, never all in memory at once
        return cv2.imread(source, flags)
    except (cv2.error, OSError):
        return None


def _srgb_or_none(icc: bytes | None) -> bool:
    """True when there is no ICC profile or it describes itself as sRGB."""
    if not icc:
        return True
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile
        return "srgb" in (profile.profile_description or "").lower()
    except (OSError, ImageCms.PyCMSError, ValueError):
        return False


def _needed_size(size: tuple[int, int], p: ResizeParams) -> tuple[int, int] | None:
    """The smallest decoded (width, height) the resize needs, or ``None`` if it enlarges."""
    sw, sh = size
    sx = p.width / sw if p.width else None
    sy = p.height / sh if p.height else None
    if sx is None or sy is None:
        sx = sy = sx or sy
    elif p.fit in ("cover", "outside"):
        sx = sy = max(sx, sy)
    elif p.fit in ("contain", "inside"):
        sx = sy = min(sx, sy)
    assert sx is not None and sy is not None
    if max(sx, sy) >= 1:
        return None
    return max(1, math.ceil(sw * sx)), max(1, math.ceil(sh * sy))
