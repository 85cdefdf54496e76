"""flip: mirror the image horizontally (left-right) or vertically (top-bottom)."""

from __future__ import annotations

from typing import Literal

import pyvips

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class FlipParams(Params):
    direction: Literal["horizontal", "vertical"] = "horizontal"


@register
class Flip(Operation[FlipParams]):
    name = "flip"
    pure = True
    Params = FlipParams
    summary = "Mirror left-right (horizontal) or top-bottom (vertical)."
    geometric = True
    reshapes = True

    def apply(self, image: pyvips.Image, params: FlipParams, ctx: OpContext) -> pyvips.Image:
        return image.flip(params.direction)
