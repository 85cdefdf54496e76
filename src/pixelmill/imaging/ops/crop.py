"""crop: cut a box out of the image, in pixels or fractions of the (auto-oriented) input.

The box is ``left, top, width, height``; without ``left``/``top`` it is placed by
``gravity`` and shifted by ``offset`` (imgproxy's ``crop:w:h:gravity``). As in imgproxy,
a number between 0 and 1 (exclusive) is a fraction of the image's width or height;
other numbers are whole pixels.
"""

from __future__ import annotations

import pyvips
from pydantic import Field, model_validator

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.geometry import Gravity, gravity_offset
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class CropParams(Params):
    left: int | float | None = Field(None, ge=0, description="Left edge; none: placed by gravity.")
    top: int | float | None = Field(None, ge=0, description="Top edge; none: placed by gravity.")
    width: int | float = Field(gt=0, description="Box width.")
    height: int | float = Field(gt=0, description="Box height.")
    gravity: Gravity = Field("centre", description="Where a box without left/top sits.")
    offset: tuple[int, int] = Field(
        (0, 0), description="Shift (x, y) in pixels of a gravity-placed box, inward."
    )

    @model_validator(mode="after")
    def _check(self) -> CropParams:
        numbers = [v for v in (self.left, self.top, self.width, self.height) if v is not None]
        if (self.left is None) != (self.top is None):
            raise ValueError("give both left and top, or neither")
        if any(v > 1 and v != int(v) for v in numbers):
            raise ValueError("crop numbers are whole pixels, or fractions between 0 and 1")
        return self


@register
class Crop(Operation[CropParams]):
    name = "crop"
    pure = True
    Params = CropParams
    summary = "Cut a box (left, top, width, height, or placed by gravity) out of the image."
    geometric = True
    reshapes = True

    def apply(self, image: pyvips.Image, params: CropParams, ctx: OpContext) -> pyvips.Image:
        p = params
        iw, ih = image.width, image.height
        width = max(1, min(iw, _pixels(p.width, iw)))
        height = max(1, min(ih, _pixels(p.height, ih)))
        if p.left is None or p.top is None:
            grav = p.gravity
            dx, dy = p.offset
            left = gravity_offset(grav, iw, width, "x") + (-dx if "east" in grav else dx)
            top = gravity_offset(grav, ih, height, "y") + (-dy if "south" in grav else dy)
            left, top = max(0, min(iw - width, left)), max(0, min(ih - height, top))
        else:
            left, top = _pixels(p.left, iw), _pixels(p.top, ih)
            if left >= iw or top >= ih:
                raise InvalidParameter(f"crop box starts outside the {iw}x{ih} image")
            width, height = min(width, iw - left), min(height, ih - top)
        return image.extract_area(left, top, width, height)


def _pixels(value: float, whole: int) -> int:
    """A crop number in pixels: a fraction (0 < value < 1) of ``whole``, else itself."""
    return round(value * whole) if 0 < value < 1 else int(value)
