"""resize: scale to a width and/or height with a fit mode (sharp's semantics).

``cover`` fills the box and crops by gravity, smart gravity or a focal point;
``contain`` fits inside and pads with ``background``; ``fill`` stretches; ``inside``
fits inside; ``outside`` covers without cropping. Without ``enlarge`` no mode scales an
image up (``contain`` then centres a small image in the box, ``fill`` shrinks only the
sides that are too long). First in a pipeline, it decodes with shrink-on-load (JPEG
DCT scaling, WebP scale, pyramid levels); 16-bit sources are resized by libvips'
``resize``, which keeps 16 bits (``OpContext.keep_16_bit``). Big JPEG thumbnails decode
through OpenCV, already shrunk in the DCT (:mod:`pixelmill.imaging.jpeg`), opaque GIFs
as RGB (:mod:`pixelmill.imaging.gif`); crops, padding and later steps stay in libvips.
"""

from __future__ import annotations

import math
from typing import Any, Literal, TypeAlias

import pyvips
from pydantic import Field, model_validator

from pixelmill.imaging import faces
from pixelmill.imaging.geometry import (
    COMPASS,
    Colour,
    Gravity,
    SmartGravity,
    focal_offset,
    gravity_offset,
)
from pixelmill.imaging.gif import opaque_first_frame
from pixelmill.imaging.intermediates import whole_image
from pixelmill.imaging.jpeg import ReducedJpeg, decode_reduced
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params
from pixelmill.imaging.ops.deep import DeepImage, deep_image

MAX_SIDE = 16384
_HUGE = 10_000_000  # "unbounded" for libvips thumbnail

#: how the image meets the width x height box (sharp's names, plus imgproxy's
#: ``fill-down``: ``cover`` that, when the image is too small to fill the box, crops it
#: to the box's aspect ratio instead of returning it whole)
Fit = Literal["cover", "contain", "fill", "inside", "outside", "fill-down"]


class ResizeParams(Params):
    width: int | None = Field(None, ge=1, le=MAX_SIDE, description="Target width in pixels.")
    height: int | None = Field(None, ge=1, le=MAX_SIDE, description="Target height in pixels.")
    fit: Fit = "cover"
    gravity: Gravity | SmartGravity = "centre"
    focal: tuple[float, float] | None = Field(
        None, description="Focal point (x, y) as fractions 0..1 of the image; overrides gravity."
    )
    background: Colour = (0, 0, 0, 255)
    enlarge: bool = Field(
        False, description="Allow scaling up: without it a small image keeps its size."
    )
    min_width: int | None = Field(
        None,
        ge=1,
        le=MAX_SIDE,
        description="Scale up (with enlarge) or less far down so the "
        "result is at least this wide; then cropped to width.",
    )
    min_height: int | None = Field(
        None, ge=1, le=MAX_SIDE, description="As min_width, for the height."
    )
    scale: float | None = Field(
        None,
        gt=0,
        le=64,
        description="Without width and height: scale the image by this "
        "factor (zoom), capped at max_side.",
    )
    max_side: int = Field(MAX_SIDE, ge=1, le=MAX_SIDE, description="Longest side, uncut.")
    offset: tuple[int, int] = Field(
        (0, 0),
        description="Crop window shift (x, y) in output pixels, inward from the "
        "gravity edge (right/down for centre).",
    )

    @model_validator(mode="after")
    def _check(self) -> ResizeParams:
        sized = (self.width, self.height, self.min_width, self.min_height, self.scale)
        if all(v is None for v in sized):
            raise ValueError("give width, height, min_width, min_height or scale")
        if self.focal is not None and not all(0.0 <= v <= 1.0 for v in self.focal):
            raise ValueError("focal point coordinates are fractions between 0 and 1")
        return self


Source: TypeAlias = "pyvips.Image | bytes | str | ReducedJpeg | DeepImage"


def _thumb(src: Source, width: int, **kw: Any) -> pyvips.Image:
    if isinstance(src, (ReducedJpeg, DeepImage)):
        return _thumb_decoded(src, width, **kw)
    if isinstance(src, pyvips.Image):
        return src.thumbnail_image(width, **kw)
    if isinstance(src, bytes):
        return pyvips.Image.thumbnail_buffer(src, width, **kw)
    return pyvips.Image.thumbnail(src, width, **kw)


def _oriented_size(src: Source) -> tuple[int, int]:
    if isinstance(src, (ReducedJpeg, DeepImage)):
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
    pure = True
    Params = ResizeParams
    summary = "Scale to width/height with fit cover|contain|fill|inside|outside."
    geometric = True
    reshapes = True

    def apply(self, image: pyvips.Image, params: ResizeParams, ctx: OpContext) -> pyvips.Image:
        if params.gravity == "face":
            image = image.copy_memory()  # read by the detector, then resized
            params = _face_gravity(image, params, ctx)
        deep = ctx.keep_16_bit and str(image.format) == "ushort"
        return self._run(DeepImage(image) if deep else image, params)

    def load(self, source: bytes | str, params: ResizeParams, ctx: OpContext) -> pyvips.Image:
        if params.gravity == "face":
            side = faces.DETECT_SIDE
            params = _face_gravity(_thumb(source, side, height=side, size="down"), params, ctx)
        decoded: Source | None = _reduced_jpeg(source, params, ctx)
        if decoded is None:
            whole = whole_image(source, ctx.intermediates, ctx.source_id)
            if whole is not None:  # kept decoded: resize it (16 bits kept when asked)
                return self.apply(whole, params, ctx)
        if decoded is None and ctx.keep_16_bit:
            decoded = deep_image(source)
        if decoded is None:  # an opaque GIF: resized as RGB (libvips decodes it RGBA)
            decoded = opaque_first_frame(source)
        return self._run(source if decoded is None else decoded, params)

    def _run(self, src: Source, p: ResizeParams) -> pyvips.Image:
        if _general(p):
            return _run_general(src, p)
        size = "both" if p.enlarge else "down"
        w, h = p.width, p.height
        if w is None or h is None:  # the other side follows, to max_side at most
            return _thumb(src, w or p.max_side, height=h or p.max_side, size=size)
        if p.fit == "fill":
            if not p.enlarge:
                sw, sh = _oriented_size(src)
                w, h = min(w, sw), min(h, sh)
            return _thumb(src, w, height=h, size="force")
        if p.fit == "inside":
            return _thumb(src, w, height=h, size=size)
        if p.fit == "contain":
            out = _thumb(src, w, height=h, size=size)
            if (out.width, out.height) == (w, h):
                return out
            return embed(out, w, h, p.gravity, p.background)
        # cover / outside: scale so both sides reach the box
        if p.fit == "cover" and p.enlarge:
            sw, sh = _oriented_size(src)
            scale = max(w / sw, h / sh)
            if scale > 1:
                return _enlarged_cut(src, scale, scale, w, h, p)
        if p.fit == "cover" and p.focal is None and p.gravity in ("centre", "attention", "entropy"):
            return _thumb(src, w, height=h, crop=p.gravity, size=size)
        sw, sh = _oriented_size(src)
        scale = max(w / sw, h / sh)
        if not p.enlarge:
            scale = min(scale, 1.0)
        scale = min(scale, p.max_side / max(sw, sh)) if p.fit == "outside" else scale
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


def _face_gravity(image: pyvips.Image, p: ResizeParams, ctx: OpContext) -> ResizeParams:
    """``gravity=face`` as a focal point at the centre of the faces' box, or as
    ``attention`` when the detector finds none."""
    focus = faces.faces_focus(faces.find_faces(image, ctx.detect_faces), image.width, image.height)
    if focus is None:
        return p.model_copy(update={"gravity": "attention"})
    return p.model_copy(update={"gravity": "centre", "focal": p.focal or focus})


def _general(p: ResizeParams) -> bool:
    """Whether the request needs the explicit-scale path (the common ones map straight
    onto libvips' ``thumbnail``)."""
    plain = p.width is not None or p.height is not None
    extra = p.min_width or p.min_height or p.scale is not None or p.offset != (0, 0)
    return bool(extra) or p.fit == "fill-down" or not plain


def _scales(size: tuple[int, int], p: ResizeParams, *, capped: bool) -> tuple[float, float]:
    """Horizontal and vertical scale factors of a resize of an image of ``size``;
    ``capped``: at most 1 unless ``enlarge``, and the longest side within ``max_side``."""
    sw, sh = size
    w, h = p.width, p.height
    if w is None and h is None:
        sx = sy = p.scale or 1.0
    elif w is None or h is None:
        sx = sy = w / sw if w else (h or sh) / sh
    elif p.fit == "fill":
        sx, sy = w / sw, h / sh
    elif p.fit in ("cover", "outside", "fill-down"):
        sx = sy = max(w / sw, h / sh)
    else:
        sx = sy = min(w / sw, h / sh)
    bump = max(p.min_width / sw if p.min_width else 0, p.min_height / sh if p.min_height else 0)
    if bump and p.fit == "fill":
        sx = max(sx, p.min_width / sw if p.min_width else 0)
        sy = max(sy, p.min_height / sh if p.min_height else 0)
    elif bump:
        sx = sy = max(sx, bump)
    if capped:
        if not p.enlarge:
            sx, sy = min(sx, 1.0), min(sy, 1.0)
        if p.width is None or p.height is None or p.fit == "outside":  # not cut to a box
            longest = max(sw * sx, sh * sy)
            if longest > p.max_side:
                sx, sy = sx * p.max_side / longest, sy * p.max_side / longest
    return sx, sy


def _run_general(src: Source, p: ResizeParams) -> pyvips.Image:
    """Scale by explicit factors (min sizes, zoom, fill-down, offsets), then cut or pad
    the result to the box."""
    sw, sh = _oriented_size(src)
    sx, sy = _scales((sw, sh), p, capped=True)
    tw, th = max(1, round(sw * sx)), max(1, round(sh * sy))
    if p.fit == "outside":
        return _thumb(src, tw, height=th, size="force")
    w, h = p.width or tw, p.height or th
    cw, ch = min(w, tw), min(h, th)
    if p.fit == "fill-down" and (tw < w or th < h):
        # too small to fill the box: the largest window of the box's aspect ratio
        cw = min(tw, max(1, round(th * w / h)))
        ch = min(th, max(1, round(cw * h / w)))
    if (cw, ch) == (tw, th):
        out = _thumb(src, tw, height=th, size="force")
    elif tw > sw or th > sh:
        out = _enlarged_cut(src, tw / sw, th / sh, cw, ch, p)
    else:
        out = _cut(_thumb(src, tw, height=th, size="force"), cw, ch, p)
    if p.fit == "contain" and p.width and p.height and (out.width, out.height) != (w, h):
        return embed(out, w, h, p.gravity, p.background)
    return out


def _enlarged_cut(
    src: Source, sx: float, sy: float, cw: int, ch: int, p: ResizeParams
) -> pyvips.Image:
    """The ``cw`` x ``ch`` window of the source scaled by ``sx`` x ``sy`` (an
    enlargement), cut from the source first and only the window scaled: the whole
    enlarged image is never made (a 4 x 20000 PNG covering 400 x 300 would be
    400 x 2,000,000 pixels: 2.4 GB and 22 s). The window lies where the cut of the
    enlarged image would: by gravity or focal point, ``offset`` (output pixels) scaled to
    the source, a smart crop on the source's own pixels."""
    image = src.image() if isinstance(src, (ReducedJpeg, DeepImage)) else _upright(src)
    ww = min(image.width, max(1, round(cw / sx)))
    wh = min(image.height, max(1, round(ch / sy)))
    dx, dy = p.offset
    window = _cut(image, ww, wh, p.model_copy(update={"offset": (round(dx / sx), round(dy / sy))}))
    if isinstance(src, DeepImage):
        return DeepImage(window).resized(cw, ch)
    return window.thumbnail_image(cw, height=ch, size="force")


def _upright(src: pyvips.Image | bytes | str) -> pyvips.Image:
    if isinstance(src, pyvips.Image):
        return src
    if isinstance(src, bytes):
        return pyvips.Image.new_from_buffer(src, "").autorot()
    return pyvips.Image.new_from_file(src).autorot()


def _cut(image: pyvips.Image, cw: int, ch: int, p: ResizeParams) -> pyvips.Image:
    """A ``cw`` x ``ch`` window of ``image`` placed by focal point, smart or compass
    gravity, shifted by ``offset``."""
    if p.focal is None and p.gravity in ("attention", "entropy") and p.offset == (0, 0):
        return image.copy_memory().smartcrop(cw, ch, interesting=p.gravity)
    if p.focal is not None:
        left = focal_offset(p.focal[0], image.width, cw)
        top = focal_offset(p.focal[1], image.height, ch)
    else:
        grav = p.gravity if p.gravity in COMPASS else "centre"
        left = gravity_offset(grav, image.width, cw, "x")
        top = gravity_offset(grav, image.height, ch, "y")
        dx, dy = p.offset
        left += -dx if "east" in grav else dx
        top += -dy if "south" in grav else dy
    left = max(0, min(image.width - cw, left))
    top = max(0, min(image.height - ch, top))
    return image.extract_area(left, top, cw, ch)


def embed(
    image: pyvips.Image, w: int, h: int, gravity: str, bg: tuple[int, int, int, int]
) -> pyvips.Image:
    compass = COMPASS.get(gravity, "centre")
    if bg[3] < 255 and not image.hasalpha():
        image = image.addalpha()
    background = list(bg[: image.bands]) if image.bands >= 3 else [bg[0], bg[3]][: image.bands]
    return image.gravity(compass, w, h, extend="background", background=background)


def _thumb_decoded(src: ReducedJpeg | DeepImage, width: int, **kw: Any) -> pyvips.Image:
    """``thumbnail_image`` semantics on a reduced JPEG (sized from the full image) or a
    16-bit image."""
    crop = kw.get("crop")
    smart = crop is not None and crop != "centre"
    if smart and isinstance(src, ReducedJpeg):
        return src.image().thumbnail_image(width, **kw)  # smart crops: libvips
    box_h = kw.get("height", _HUGE)
    if kw.get("size") == "force":
        return src.resized(width, box_h)
    tw, th = _fitted(src.size, width, box_h, cover=crop is not None, down=kw.get("size") == "down")
    out = src.resized(tw, th)
    cw, ch = min(width, tw), min(box_h, th)
    if (cw, ch) == (tw, th):
        return out
    if smart:
        # smartcrop reads the picture twice (find, then cut): not a sequential decode
        return out.copy_memory().smartcrop(cw, ch, interesting=crop)
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


def _reduced_jpeg(
    source: bytes | str, p: ResizeParams, ctx: OpContext | None = None
) -> ReducedJpeg | None:
    """The source decoded already shrunk for this resize, or ``None`` (libvips decodes)."""
    needed = lambda size: _needed_size(size, p)  # noqa: E731
    if ctx is None:
        return decode_reduced(source, needed)
    return decode_reduced(source, needed, store=ctx.intermediates, source_id=ctx.source_id)


def _needed_size(size: tuple[int, int], p: ResizeParams) -> tuple[int, int] | None:
    """The smallest decoded (width, height) the resize needs, or ``None`` if it enlarges."""
    sw, sh = size
    sx, sy = _scales(size, p, capped=False)
    if max(sx, sy) >= 1:
        return None
    return max(1, math.ceil(sw * sx)), max(1, math.ceil(sh * sy))
