"""normalize: percentile intensity normalisation (low → 0, high → full scale)."""

from __future__ import annotations

import pyvips
from pydantic import Field, model_validator

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import from_array, to_array
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class NormalizeParams(Params):
    low: float = Field(1.0, ge=0, le=100, allow_inf_nan=False, description="Low percentile.")
    high: float = Field(99.8, ge=0, le=100, allow_inf_nan=False, description="High percentile.")
    per_channel: bool = Field(True, description="Percentiles of each channel separately.")

    @model_validator(mode="after")
    def _order(self) -> NormalizeParams:
        if self.low >= self.high:
            raise ValueError("low must be below high")
        return self


@register
class Normalize(Operation[NormalizeParams]):
    name = "normalize"
    Params = NormalizeParams
    summary = "Stretch the low..high percentiles to the full range; dtype kept."
    queue = "transform"
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True

    def apply(self, image: pyvips.Image, params: NormalizeParams, ctx: OpContext) -> pyvips.Image:
        from pixelmill.imaging.analysis.preprocess import normalize_percentile

        arr, alpha = to_array(image)
        out = normalize_percentile(
            arr, low=params.low, high=params.high, per_channel=params.per_channel
        )
        return from_array(out, alpha)
