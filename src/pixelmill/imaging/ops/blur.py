"""blur: Gaussian blur with standard deviation ``sigma`` in pixels."""

from __future__ import annotations

import pyvips
from pydantic import Field

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class BlurParams(Params):
    sigma: float = Field(ge=0.3, le=500, allow_inf_nan=False, description="Gaussian sigma, pixels.")


@register
class Blur(Operation[BlurParams]):
    name = "blur"
    pure = True
    Params = BlurParams
    summary = "Gaussian blur; sigma in pixels."

    def apply(self, image: pyvips.Image, params: BlurParams, ctx: OpContext) -> pyvips.Image:
        fmt = image.format
        return image.gaussblur(params.sigma).cast(fmt)
