"""sharpen: unsharp masking in perceptual lightness (libvips ``sharpen``)."""

from __future__ import annotations

import pyvips
from pydantic import Field

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class SharpenParams(Params):
    sigma: float = Field(1.0, ge=0.3, le=10, allow_inf_nan=False, description="Mask sigma, pixels.")
    amount: float = Field(
        2.0, ge=0, le=10, allow_inf_nan=False, description="Slope for jagged areas (m2)."
    )
    flat: float = Field(
        0.0, ge=0, le=10, allow_inf_nan=False, description="Slope for flat areas (m1)."
    )


@register
class Sharpen(Operation[SharpenParams]):
    name = "sharpen"
    pure = True
    Params = SharpenParams
    summary = "Unsharp mask on lightness; sigma in pixels."

    def apply(self, image: pyvips.Image, params: SharpenParams, ctx: OpContext) -> pyvips.Image:
        interp = image.interpretation
        out = image.sharpen(sigma=params.sigma, m1=params.flat, m2=params.amount)
        if out.interpretation != interp and interp in ("srgb", "b-w", "rgb16", "grey16"):
            out = out.colourspace(interp)
        return out
