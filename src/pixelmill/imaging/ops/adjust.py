"""adjust: brightness, contrast and gamma on the colour bands (alpha untouched)."""

from __future__ import annotations

import pyvips
from pydantic import Field

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params
from pixelmill.imaging.pixels import join_alpha, split_alpha


class AdjustParams(Params):
    brightness: float = Field(
        1.0, ge=0, le=10, allow_inf_nan=False, description="Multiplier; 1 leaves the image alone."
    )
    contrast: float = Field(
        1.0, ge=0, le=10, allow_inf_nan=False, description="Slope around mid-grey; 1 = unchanged."
    )
    gamma: float = Field(
        1.0, ge=0.1, le=10, allow_inf_nan=False, description="Gamma; >1 brightens mid-tones."
    )


@register
class Adjust(Operation[AdjustParams]):
    name = "adjust"
    pure = True
    Params = AdjustParams
    summary = "Brightness (multiplier), contrast (slope about mid-grey) and gamma."

    def apply(self, image: pyvips.Image, params: AdjustParams, ctx: OpContext) -> pyvips.Image:
        fmt = image.format
        colour, alpha = split_alpha(image)
        top = 65535.0 if fmt == "ushort" else 255.0
        mid = top / 2
        a = params.brightness * params.contrast
        b = mid * (1 - params.contrast) * params.brightness
        if a != 1.0 or b != 0.0:
            colour = colour.linear(a, b)
            colour = (colour > top).ifthenelse(top, (colour < 0).ifthenelse(0, colour)).cast(fmt)
        if params.gamma != 1.0:
            # libvips scales by the format's maximum, so 8- and 16-bit behave alike
            colour = colour.gamma(exponent=params.gamma).cast(fmt)
        return join_alpha(colour, alpha)
