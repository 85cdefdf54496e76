"""subtract_background: rolling ball (ImageJ-style) or top-hat background removal."""

from __future__ import annotations

from typing import Literal

import pyvips
from pydantic import Field

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import from_array, to_array
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class SubtractBackgroundParams(Params):
    radius: float = Field(
        50.0, ge=1, le=1000, allow_inf_nan=False, description="Ball/disk radius, pixels."
    )
    method: Literal["rolling_ball", "tophat"] = "rolling_ball"
    light_background: bool = Field(
        False, description="Dark objects on a light background (brightfield)."
    )


@register
class SubtractBackground(Operation[SubtractBackgroundParams]):
    name = "subtract_background"
    Params = SubtractBackgroundParams
    summary = "Remove uneven background: rolling ball or white top-hat; radius in pixels."
    queue = "analyse"
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True

    def apply(
        self, image: pyvips.Image, params: SubtractBackgroundParams, ctx: OpContext
    ) -> pyvips.Image:
        from pixelmill.imaging.analysis.preprocess import subtract_background

        arr, alpha = to_array(image)
        out = subtract_background(
            arr,
            radius=params.radius,
            method=params.method,
            light_background=params.light_background,
        )
        return from_array(out, alpha)
