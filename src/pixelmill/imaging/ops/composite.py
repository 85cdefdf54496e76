"""composite: a fluorescence view — chosen channels, each in a colour, added up.

Each channel is scaled by its format's full range (0..255 for 8-bit, 0..65535 for 16-bit;
float channels by their own maximum), multiplied by its colour and summed; the sum is
clipped to 8-bit sRGB. A fixed scale, not the tile's own minimum and maximum, so the tiles
of one view match at their seams. No channels gives black (every channel hidden)."""

from __future__ import annotations

from typing import Annotated

import pyvips
from pydantic import BeforeValidator, Field, model_validator

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.geometry import Colour
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params

#: the full range of each integer format (a channel at this value shows its full colour)
_RANGE = {
    "uchar": 255.0,
    "char": 127.0,
    "ushort": 65535.0,
    "short": 32767.0,
    "uint": 4294967295.0,
    "int": 2147483647.0,
}


class CompositeParams(Params):
    channels: list[int] = Field(
        ..., max_length=16, description="0-based channel indices to show (empty: none)."
    )
    colours: list[Colour] = Field(
        ..., max_length=16, description="The colour of each shown channel, e.g. 00ff00."
    )

    @model_validator(mode="after")
    def _pairs(self) -> CompositeParams:
        if len(self.channels) != len(self.colours):
            raise ValueError("give one colour per channel")
        if any(c < 0 for c in self.channels):
            raise ValueError("channel indices are >= 0")
        return self


@register
class Composite(Operation[CompositeParams]):
    name = "composite"
    pure = True
    Params = CompositeParams
    summary = "Show chosen channels of a multi-channel image, each in a colour, added up."

    def apply(self, image: pyvips.Image, params: CompositeParams, ctx: OpContext) -> pyvips.Image:
        missing = [c for c in params.channels if c >= image.bands]
        if missing:
            raise InvalidParameter(
                f"channel {missing[0]} is not in this image ({image.bands} channels, from 0)",
                field="channels",
            )
        total: pyvips.Image | None = None
        for index, (r, g, b, _) in zip(params.channels, params.colours, strict=True):
            band = image.extract_band(index).cast("float")
            scale = _RANGE.get(str(image.format)) or max(band.max(), 1e-12)
            term = band * [r / scale, g / scale, b / scale]
            total = term if total is None else total + term
        if total is None:
            total = image.extract_band(0).new_from_image([0, 0, 0])
        return total.cast("uchar").copy(interpretation="srgb")


def parse_channels(value: object) -> object:
    """The render parameter ``channels``: ``none`` or ``index:colour,...`` (``0:0000ff,
    2:00ff00``; a channel without a colour shows white), as ``((index, colour), ...)``."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if text == "none":
        return ()
    pairs = []
    for part in text.split(","):
        index, _, colour = part.strip().partition(":")
        if not index.strip().isdigit():
            raise ValueError("channels is 'none' or 'index:rrggbb,...', e.g. 0:0000ff,1:00ff00")
        pairs.append((int(index), colour.strip() or "white"))
    return tuple(pairs)


#: the render parameter's type: ``((index, colour), ...)`` from ``0:0000ff,2:00ff00``
ChannelList = Annotated[tuple[tuple[int, Colour], ...], BeforeValidator(parse_channels)]
