"""trim: cut away uniform borders (a scanned slide's margin, a product shot's white).

A border is the run of rows and columns, from each edge, whose pixels all lie within
``threshold`` of the border colour -- ``colour``, or the ``corner`` pixel (top-left by
default) when none is given (libvips ``find_trim``). An image that is uniform all over
is left as it is: trim never fails a render, it cuts what it finds or nothing. So is an
image narrower or shorter than :data:`MIN_SIDE` pixels (a 1x1 pixel, a 2 px rule):
``find_trim`` smooths with a 3x3 median first and refuses a smaller image, and a border
there would leave nothing anyway (weserv's trim skips such images too).
"""

from __future__ import annotations

from typing import Literal

import pyvips
from pydantic import Field

from pixelmill.imaging.geometry import Colour
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params

#: the smallest width and height trim looks at: libvips ``find_trim``'s 3x3 median window
MIN_SIDE = 3


class TrimParams(Params):
    threshold: float = Field(10.0, ge=0, le=255, description="Largest difference, 0..255.")
    colour: Colour | None = Field(None, description="Border colour; none: the corner pixel.")
    corner: Literal["top-left", "bottom-right"] = Field(
        "top-left", description="Which corner pixel is the border colour when none is given."
    )


@register
class Trim(Operation[TrimParams]):
    name = "trim"
    pure = True
    Params = TrimParams
    summary = "Cut away uniform borders (within threshold of a colour or the corner pixel)."
    geometric = True
    reshapes = True

    def apply(self, image: pyvips.Image, params: TrimParams, ctx: OpContext) -> pyvips.Image:
        if image.width < MIN_SIDE or image.height < MIN_SIDE:
            return image  # too small to have a border (and for find_trim's median)
        flat = image.flatten(background=[255] * (image.bands - 1)) if image.hasalpha() else image
        if params.colour is not None:
            rgb = list(params.colour[:3])
            background = rgb if flat.bands >= 3 else [round(sum(rgb) / 3)]
        else:
            x, y = (0, 0) if params.corner == "top-left" else (flat.width - 1, flat.height - 1)
            background = list(flat.getpoint(x, y))
        left, top, width, height = flat.find_trim(
            threshold=params.threshold, background=background[: flat.bands]
        )
        if width == 0 or height == 0:
            return image
        return image.extract_area(left, top, width, height)
