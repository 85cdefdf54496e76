"""resize: scale to a width and/or height with a fit mode (sharp's semantics).

``cover`` fills the box and crops by gravity, smart gravity or a focal point;
``contain`` fits inside and pads with ``background``; ``fill`` stretches; ``inside``
fits inside; ``outside`` covers without cropping. As the first step of a pipeline it
decodes with shrink-on-load (JPEG DCT scaling, WebP scale, pyramid levels).

Big JPEG thumbnails decode through Pillow's ``draft()`` (libjpeg-turbo DCT scaling by
the largest power of two that keeps the needed size, as sharp's ``fastShrinkOnLoad``):
measured about 20% less CPU than libvips' own shrink-on-load, which keeps a 2x margin
(see docs/benchmarks.md, "Render"). libvips then does the final resize and crop.
"""

from __future__ import annotations

import io
import math
from typing import Any, Literal, NamedTuple, TypeAlias

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

MAX_SIDE = 16384
_HUGE = 10_000_000  # "unbounded" for libvips thumbnail


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


class _Drafted(NamedTuple):
    """A JPEG decoded already shrunk (see :func:`_draft_jpeg`) and its full upright size,
    so output sizes are computed from the original and do not pick up the rounding of
    the shrunk one."""

    image: pyvips.Image
    size: tuple[int, int]


Source: TypeAlias = "pyvips.Image | bytes | str | _Drafted"


def _thumb(src: Source, width: int, **kw: Any) -> pyvips.Image:
    if isinstance(src, _Drafted):
        if kw.get("crop") or kw.get("size") == "force":
            return src.image.thumbnail_image(width, **kw)
        # fit inside the box as libvips would for the full-size image, then hit it exactly
        sw, sh = src.size
        scale = min(width / sw, kw.get("height", _HUGE) / sh)
        if kw.get("size") == "down":
            scale = min(scale, 1.0)
        return src.image.thumbnail_image(
            _side(sw * scale, width),
            height=_side(sh * scale, kw.get("height", _HUGE)),
            size="force",
        )
    if isinstance(src, pyvips.Image):
        return src.thumbnail_image(width, **kw)
    if isinstance(src, bytes):
        return pyvips.Image.thumbnail_buffer(src, width, **kw)
    return pyvips.Image.thumbnail(src, width, **kw)


def _side(exact: float, box: int) -> int:
    # a side within a pixel of the box is the box (the caller computed it for this aspect)
    return box if abs(exact - box) < 1 else max(1, round(exact))


def _oriented_size(src: Source) -> tuple[int, int]:
    if isinstance(src, _Drafted):
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
        drafted = _draft_jpeg(source, params)
        return self._run(source if drafted is None else drafted, params)

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


def _draft_jpeg(source: bytes | str, p: ResizeParams) -> _Drafted | None:
    """Decode a JPEG already shrunk by 2, 4 or 8 in the DCT (Pillow ``draft``), as an
    upright libvips image carrying the source's metadata; ``None`` when that does not
    apply (not a JPEG, CMYK, too little shrink, enlarging) and libvips should decode."""
    if isinstance(source, bytes) and not source.startswith(b"\xff\xd8\xff"):
        return None
    from PIL.JpegImagePlugin import JpegImageFile

    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        # the plugin class directly: Image.open() would warn about decompression bombs on
        # 90+ MP images, which the upload already checked against render.max_pixels
        with JpegImageFile(fp) as im:
            if im.mode not in ("RGB", "L"):
                return None
            orientation = int(im.getexif().get(0x0112, 1) or 1)
            upright = (im.height, im.width) if orientation in (5, 6, 7, 8) else im.size
            need = _needed_size(upright, p)
            if need is None:
                return None
            if orientation in (5, 6, 7, 8):
                need = (need[1], need[0])
            stored = im.size
            im.draft(im.mode, need)
            if im.size == stored:
                return None  # no DCT shrink possible: libvips is as fast
            im.load()
            bands = 3 if im.mode == "RGB" else 1
            image = pyvips.Image.new_from_memory(im.tobytes(), im.width, im.height, bands, "uchar")
            info = dict(im.info)
    except (OSError, ValueError, SyntaxError):  # SyntaxError: "not a JPEG file"
        return None  # libvips decodes it (and reports what is wrong)
    image = image.copy(interpretation="srgb" if bands == 3 else "b-w")
    for name, key in (
        ("exif-data", "exif"),
        ("icc-profile-data", "icc_profile"),
        ("xmp-data", "xmp"),
    ):
        blob = info.get(key)
        if blob:
            image.set_type(pyvips.GValue.blob_type, name, bytes(blob))
    if "dpi" in info:
        xdpi, ydpi = info["dpi"]
        image = image.copy(xres=float(xdpi) / 25.4, yres=float(ydpi) / 25.4)
    if orientation != 1:
        image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
        image = image.autorot()
    return _Drafted(image, upright)


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
