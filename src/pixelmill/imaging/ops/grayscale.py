"""grayscale: convert to one lightness band (alpha is kept)."""

from __future__ import annotations

import pyvips

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class GrayscaleParams(Params):
    pass


@register
class Grayscale(Operation[GrayscaleParams]):
    name = "grayscale"
    pure = True
    Params = GrayscaleParams
    summary = "Convert to grayscale (perceptual lightness)."

    def apply(self, image: pyvips.Image, params: GrayscaleParams, ctx: OpContext) -> pyvips.Image:
        interp = str(image.interpretation)
        if interp in ("b-w", "grey16"):
            return image
        return image.colourspace("grey16" if interp == "rgb16" else "b-w")
