"""side_by_side: the original image and the current one, left to right."""

from __future__ import annotations

import pyvips
from pydantic import Field

from pixelmill.imaging.geometry import Colour
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import from_array, get_labels, reference_image, to_array
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class SideBySideParams(Params):
    gap: int = Field(8, ge=0, le=500, description="Space between the images, px.")
    background: Colour = Field((255, 255, 255, 255), description="Colour of the gap.")


@register
class SideBySide(Operation[SideBySideParams]):
    name = "side_by_side"
    Params = SideBySideParams
    summary = "Original | current image, for comparing a result with its source (8-bit RGB)."
    queue = "transform"
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True
    reshapes = True

    def apply(self, image: pyvips.Image, params: SideBySideParams, ctx: OpContext) -> pyvips.Image:
        from pixelmill.imaging.analysis.overlay import side_by_side

        left = reference_image(ctx, get_labels(ctx), image)
        r, g, b, _ = params.background
        out = side_by_side(
            [to_array(left)[0], to_array(image)[0]], gap=params.gap, background=(r, g, b)
        )
        return from_array(out)
