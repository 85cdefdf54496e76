"""rotate: turn by any angle in degrees clockwise; right angles are lossless."""

from __future__ import annotations

import math

import pyvips
from pydantic import Field

from pixelmill.imaging.geometry import Colour
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params

_RIGHT = {90: "d90", 180: "d180", 270: "d270"}


class RotateParams(Params):
    angle: float = Field(ge=-360, le=360, allow_inf_nan=False, description="Degrees clockwise.")
    background: Colour = Field((0, 0, 0, 255), description="Fill for the uncovered corners.")


@register
class Rotate(Operation[RotateParams]):
    name = "rotate"
    pure = True
    Params = RotateParams
    summary = "Rotate clockwise by any angle; the uncovered corners take the background colour."
    geometric = True
    reshapes = True

    def apply(self, image: pyvips.Image, params: RotateParams, ctx: OpContext) -> pyvips.Image:
        angle = params.angle % 360
        if math.isclose(angle, 0.0, abs_tol=1e-9):
            return image
        right = round(angle)
        if math.isclose(angle, right, abs_tol=1e-9) and right in _RIGHT:
            return image.rot(_RIGHT[right])
        bg = params.background
        if bg[3] < 255 and not image.hasalpha():
            image = image.addalpha()
        background = list(bg[: image.bands]) if image.bands >= 3 else [bg[0], bg[3]][: image.bands]
        return image.rotate(angle, background=background)
