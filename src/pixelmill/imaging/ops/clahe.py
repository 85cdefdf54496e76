"""clahe: contrast-limited adaptive histogram equalisation (OpenCV)."""

from __future__ import annotations

import pyvips
from pydantic import Field

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import from_array, to_array
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class ClaheParams(Params):
    clip_limit: float = Field(
        2.0, gt=0, le=40, allow_inf_nan=False, description="Contrast limit (1 = none)."
    )
    tiles: int = Field(8, ge=1, le=64, description="Contextual regions per side.")
    per_channel: bool = Field(
        False, description="Equalise each channel; RGB is otherwise equalised on Lab lightness."
    )


@register
class Clahe(Operation[ClaheParams]):
    name = "clahe"
    pure = True
    Params = ClaheParams
    summary = "Adaptive histogram equalisation (CLAHE); 8/16-bit/float kept, RGB on lightness."
    queue = "transform"
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True

    def apply(self, image: pyvips.Image, params: ClaheParams, ctx: OpContext) -> pyvips.Image:
        from pixelmill.imaging.analysis.preprocess import clahe

        arr, alpha = to_array(image)
        out = clahe(
            arr, clip_limit=params.clip_limit, tiles=params.tiles, per_channel=params.per_channel
        )
        return from_array(out, alpha)
