"""crop: cut a box out of the image, in pixels of the (auto-oriented) input."""

from __future__ import annotations

import pyvips
from pydantic import Field

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class CropParams(Params):
    left: int = Field(ge=0, description="Left edge in pixels.")
    top: int = Field(ge=0, description="Top edge in pixels.")
    width: int = Field(ge=1, description="Box width in pixels.")
    height: int = Field(ge=1, description="Box height in pixels.")


@register
class Crop(Operation[CropParams]):
    name = "crop"
    Params = CropParams
    summary = "Cut the box (left, top, width, height) out of the image."
    geometric = True

    def apply(self, image: pyvips.Image, params: CropParams, ctx: OpContext) -> pyvips.Image:
        p = params
        if p.left >= image.width or p.top >= image.height:
            raise InvalidParameter(
                f"crop box starts outside the {image.width}x{image.height} image"
            )
        width = min(p.width, image.width - p.left)
        height = min(p.height, image.height - p.top)
        return image.extract_area(p.left, p.top, width, height)
