"""resize: scale to a width and/or height with a fit mode (sharp's semantics).

``cover`` fills the box and crops by gravity, smart gravity or a focal point;
``contain`` fits inside and pads with ``background``; ``fill`` stretches; ``inside``
fits inside; ``outside`` covers without cropping. As the first step of a pipeline it
decodes with shrink-on-load (JPEG DCT scaling, WebP scale, pyramid levels).
"""

from __future__ import annotations

import math
from typing import Any, Literal

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


def _thumb(src: pyvips.Image | bytes | str, width: int, **kw: Any) -> pyvips.Image:
    if isinstance(src, pyvips.Image):
        return src.thumbnail_image(width, **kw)
    if isinstance(src, bytes):
        return pyvips.Image.thumbnail_buffer(src, width, **kw)
    return pyvips.Image.thumbnail(src, width, **kw)


def _oriented_size(src: pyvips.Image | bytes | str) -> tuple[int, int]:
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
        return self._run(source, params)

    def _run(self, src: pyvips.Image | bytes | str, p: ResizeParams) -> pyvips.Image:
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
