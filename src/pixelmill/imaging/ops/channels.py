"""channels: keep some channels of a multi-channel image, in a given order."""

from __future__ import annotations

import pyvips
from pydantic import Field

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import from_array, to_array
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class ChannelsParams(Params):
    select: list[int] = Field(
        ..., min_length=1, max_length=16, description="0-based channel indices, in output order."
    )


@register
class Channels(Operation[ChannelsParams]):
    name = "channels"
    Params = ChannelsParams
    summary = "Select channels of a multi-channel (fluorescence) image by index."
    queue = "transform"
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True

    def apply(self, image: pyvips.Image, params: ChannelsParams, ctx: OpContext) -> pyvips.Image:
        from pixelmill.imaging.analysis.preprocess import select_channels

        arr, _ = to_array(image)
        return from_array(select_channels(arr, params.select))
