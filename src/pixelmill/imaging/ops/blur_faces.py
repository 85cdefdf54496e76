"""blur_faces: Gaussian blur over every detected face (privacy for clinical photos)."""

from __future__ import annotations

import pyvips
from pydantic import Field

from pixelmill.imaging.faces import box_json, find_faces, obscure
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class BlurFacesParams(Params):
    sigma: float | None = Field(
        None,
        ge=0.3,
        le=500,
        allow_inf_nan=False,
        description="Gaussian sigma, pixels; default a fifth of each face region's size.",
    )
    margin: float = Field(
        0.2, ge=0, le=2, description="Grow each face box by this fraction of its size."
    )


@register
class BlurFaces(Operation[BlurFacesParams]):
    name = "blur_faces"
    Params = BlurFacesParams
    summary = "Blur every detected face (MTCNN); the rest of the image is untouched."

    def apply(self, image: pyvips.Image, params: BlurFacesParams, ctx: OpContext) -> pyvips.Image:
        # detection reads the image once and the blur again: hold it in memory
        image = image.copy_memory()
        boxes = find_faces(image, ctx.detect_faces)
        ctx.artifacts["faces"] = box_json(boxes)
        return obscure(image, boxes, how="blur", strength=params.sigma, margin=params.margin)
