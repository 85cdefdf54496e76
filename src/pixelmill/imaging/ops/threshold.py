"""threshold: a global or local threshold to a binary mask (objects = its components)."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pyvips
from pydantic import Field, model_validator

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import put_labels, to_array
from pixelmill.imaging.ops._base import OpContext, Operation, Params
from pixelmill.imaging.ops.segment_classical import ChannelName


class ThresholdParams(Params):
    channel: int | ChannelName = "auto"
    method: Literal["otsu", "li", "triangle", "yen", "isodata", "mean", "local"] = "otsu"
    foreground: Literal["bright", "dark"] = "bright"
    value: float | None = Field(
        None, allow_inf_nan=False, description="Fixed threshold, common scale; overrides method."
    )
    sigma: float = Field(0.0, ge=0, le=20, allow_inf_nan=False, description="Smoothing, px.")
    block_size: int = Field(51, ge=3, le=1001, description="Local method window, px (odd).")
    offset: float = Field(0.0, ge=-1, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _odd(self) -> ThresholdParams:
        if self.block_size % 2 == 0:
            raise ValueError("block_size must be odd")
        return self


@register
class Threshold(Operation[ThresholdParams]):
    name = "threshold"
    Params = ThresholdParams
    summary = "Binary mask (0/255) by Otsu/Li/triangle/yen/isodata/mean/local or a value."
    queue = "analyse"
    makes_labels = True
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True

    def apply(self, image: pyvips.Image, params: ThresholdParams, ctx: OpContext) -> pyvips.Image:
        from pixelmill.imaging.analysis import segment

        arr, _ = to_array(image)
        values = segment.prepare(segment.pick_channel(arr, params.channel), sigma=params.sigma)
        mask, t = segment.threshold(
            values,
            method=params.method,
            foreground=params.foreground,
            value=params.value,
            block_size=params.block_size,
            offset=params.offset,
        )
        labels = segment.label_mask(mask)
        info = {
            "op": self.name,
            "object_count": int(labels.max()),
            "threshold": None if math.isnan(t) else round(t, 6),
            "foreground": params.foreground,
        }
        put_labels(ctx, labels, info, image)
        return pyvips.Image.new_from_array(
            mask.astype(np.uint8) * np.uint8(255), interpretation="b-w"
        )
