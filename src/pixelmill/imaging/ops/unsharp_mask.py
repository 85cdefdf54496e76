"""unsharp_mask: classical unsharp mask on every channel (Fiji's Unsharp Mask)."""

from __future__ import annotations

import pyvips
from pydantic import Field

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import from_array, to_array
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class UnsharpMaskParams(Params):
    sigma: float = Field(2.0, ge=0.3, le=100, allow_inf_nan=False, description="Blur sigma, px.")
    amount: float = Field(
        1.0, ge=0, le=20, allow_inf_nan=False, description="Gain of the added detail."
    )


@register
class UnsharpMask(Operation[UnsharpMaskParams]):
    name = "unsharp_mask"
    pure = True
    Params = UnsharpMaskParams
    summary = "image + amount x (image - gaussian(sigma)); any dtype, every channel."
    queue = "transform"
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True

    def apply(self, image: pyvips.Image, params: UnsharpMaskParams, ctx: OpContext) -> pyvips.Image:
        from pixelmill.imaging.analysis.preprocess import unsharp_mask

        arr, alpha = to_array(image)
        return from_array(unsharp_mask(arr, sigma=params.sigma, amount=params.amount), alpha)
