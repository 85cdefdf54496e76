"""pad: add margins, or extend the image to a box, filled with a background colour.

``width``/``height`` extend a smaller image to that box, placed by ``gravity`` (an image
already at least that big on a side keeps its size on that side); then the margins
``top``/``right``/``bottom``/``left`` are added around it.
"""

from __future__ import annotations

import pyvips
from pydantic import Field

from pixelmill.imaging.geometry import Colour, Gravity
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params
from pixelmill.imaging.ops.resize import MAX_SIDE, embed

_MARGIN = Field(0, ge=0, le=MAX_SIDE, description="Margin in pixels.")


class PadParams(Params):
    top: int = _MARGIN
    right: int = _MARGIN
    bottom: int = _MARGIN
    left: int = _MARGIN
    width: int | None = Field(None, ge=1, le=MAX_SIDE, description="Extend to this width.")
    height: int | None = Field(None, ge=1, le=MAX_SIDE, description="Extend to this height.")
    gravity: Gravity = Field("centre", description="Where the image sits in the box.")
    background: Colour = (0, 0, 0, 255)


@register
class Pad(Operation[PadParams]):
    name = "pad"
    pure = True
    Params = PadParams
    summary = "Extend the image to a box and/or add margins, filled with a background."
    geometric = True
    reshapes = True

    def apply(self, image: pyvips.Image, params: PadParams, ctx: OpContext) -> pyvips.Image:
        p = params
        w = max(image.width, p.width or 0)
        h = max(image.height, p.height or 0)
        if (w, h) != (image.width, image.height):
            image = embed(image, w, h, p.gravity, p.background)
        if p.top or p.right or p.bottom or p.left:
            w, h = image.width + p.left + p.right, image.height + p.top + p.bottom
            image = _margins(image, p, w, h)
        return image


def _margins(image: pyvips.Image, p: PadParams, w: int, h: int) -> pyvips.Image:
    bg = p.background
    if bg[3] < 255 and not image.hasalpha():
        image = image.addalpha()
    background = list(bg[: image.bands]) if image.bands >= 3 else [bg[0], bg[3]][: image.bands]
    return image.embed(p.left, p.top, w, h, extend="background", background=background)
