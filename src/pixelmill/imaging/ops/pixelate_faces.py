"""pixelate_faces: coarse blocks over every detected face (privacy for clinical photos)."""

from __future__ import annotations

import pyvips
from pydantic import Field

from pixelmill.imaging.faces import box_json, find_faces, obscure
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class PixelateFacesParams(Params):
    block: int | None = Field(
        None, ge=2, le=512, description="Block side, pixels; default a tenth of each face."
    )
    margin: float = Field(
        0.2, ge=0, le=2, description="Grow each face box by this fraction of its size."
    )


@register
class PixelateFaces(Operation[PixelateFacesParams]):
    name = "pixelate_faces"
    Params = PixelateFacesParams
    summary = "Pixelate every detected face (MTCNN); the rest of the image is untouched."

    def apply(
        self, image: pyvips.Image, params: PixelateFacesParams, ctx: OpContext
    ) -> pyvips.Image:
        image = image.copy_memory()
        boxes = find_faces(image, ctx.detect_faces)
        ctx.artifacts["faces"] = box_json(boxes)
        return obscure(image, boxes, how="pixelate", strength=params.block, margin=params.margin)
