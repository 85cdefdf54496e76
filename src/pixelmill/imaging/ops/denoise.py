"""denoise: median, bilateral, non-local means or Gaussian noise removal (OpenCV)."""

from __future__ import annotations

from typing import Literal

import pyvips
from pydantic import Field, field_validator

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import from_array, to_array
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class DenoiseParams(Params):
    method: Literal["median", "bilateral", "nlm", "gaussian"] = "median"
    size: int = Field(3, ge=3, le=31, description="Median window side, pixels (odd).")
    strength: float = Field(
        0.04,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="bilateral/nlm intensity scale, fraction of full scale.",
    )
    sigma: float = Field(
        3.0, gt=0, le=50, allow_inf_nan=False, description="bilateral/gaussian sigma, pixels."
    )

    @field_validator("size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("size must be odd")
        return value


@register
class Denoise(Operation[DenoiseParams]):
    name = "denoise"
    Params = DenoiseParams
    summary = "Noise removal: median (size px), bilateral, non-local means, gaussian."
    queue = "analyse"
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True

    def apply(self, image: pyvips.Image, params: DenoiseParams, ctx: OpContext) -> pyvips.Image:
        from pixelmill.imaging.analysis.preprocess import denoise

        arr, alpha = to_array(image)
        out = denoise(
            arr,
            method=params.method,
            size=params.size,
            strength=params.strength,
            sigma=params.sigma,
        )
        return from_array(out, alpha)
