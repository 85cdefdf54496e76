"""watermark: composite another stored image or a line of text onto the image."""

from __future__ import annotations

import html

import pyvips
from pydantic import Field, model_validator

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.geometry import Colour, Gravity, gravity_offset
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params
from pixelmill.imaging.pixels import to_display


class WatermarkParams(Params):
    image: str | None = Field(None, max_length=128, description="Id of a stored image to overlay.")
    text: str | None = Field(None, min_length=1, max_length=200, description="Text to overlay.")
    position: Gravity = "southeast"
    opacity: float = Field(0.5, ge=0, le=1, allow_inf_nan=False)
    scale: float = Field(
        0.25, gt=0, le=1, allow_inf_nan=False, description="Watermark width / image width."
    )
    margin: int = Field(10, ge=0, le=1000, description="Distance from the edge, pixels.")
    colour: Colour = Field((255, 255, 255, 255), description="Text colour.")

    @model_validator(mode="after")
    def _one(self) -> WatermarkParams:
        if (self.image is None) == (self.text is None):
            raise ValueError("give exactly one of image or text")
        return self


def _text_overlay(p: WatermarkParams, width: int) -> pyvips.Image:
    target = max(8, int(width * p.scale))
    # libvips reads text as Pango markup: escaped, "a & b <i>" is drawn as written
    mask = pyvips.Image.text(html.escape(p.text or "", quote=False), dpi=300)
    if mask.width > target:
        mask = mask.resize(target / mask.width)
    r, g, b, _ = p.colour
    return mask.new_from_image([r, g, b]).copy(interpretation="srgb").bandjoin(mask)


@register
class Watermark(Operation[WatermarkParams]):
    name = "watermark"
    Params = WatermarkParams
    summary = "Overlay a stored image or text at a position with an opacity."
    image_fields = ("image",)

    def apply(self, image: pyvips.Image, params: WatermarkParams, ctx: OpContext) -> pyvips.Image:
        p = params
        if p.image is not None:
            if ctx.load_image is None:
                raise InvalidParameter("image watermarks are not available here")
            mark = to_display(pyvips.Image.new_from_buffer(ctx.load_image(p.image), ""))
            target = max(1, int(image.width * p.scale))
            mark = mark.thumbnail_image(target, height=max(1, image.height))
            if mark.bands < 3:
                mark = mark.colourspace("srgb")
            if not mark.hasalpha():
                mark = mark.addalpha()
        else:
            mark = _text_overlay(p, image.width)
        colour = mark.extract_band(0, n=3)
        alpha = (mark.extract_band(3) * p.opacity).cast("uchar")
        mark = colour.bandjoin(alpha)
        base = to_display(image)
        was_grey = base.bands < 3
        if was_grey:
            base = base.colourspace("srgb")
        mw, mh = min(mark.width, base.width), min(mark.height, base.height)
        mark = mark.crop(0, 0, mw, mh)
        inner_w, inner_h = base.width - 2 * p.margin, base.height - 2 * p.margin
        x = p.margin + gravity_offset(p.position, max(inner_w, mw), mw, "x")
        y = p.margin + gravity_offset(p.position, max(inner_h, mh), mh, "y")
        x, y = max(0, min(x, base.width - mw)), max(0, min(y, base.height - mh))
        out = base.composite2(mark, "over", x=x, y=y)
        if not image.hasalpha():
            out = out.extract_band(0, n=out.bands - 1)
        return out.cast("uchar")
