"""segment: run a registered (learned) segmentation model on the image (``model`` = ``name@alias``
or ``name:version``). Output: the binary mask (0/255), the foreground probability
(0..255), or an overlay of the mask on the image. Runs on the ``segment`` queue in jobs.

The model comes from ``ctx.resolve_model`` (the inference service); the op itself does
no I/O and never imports torch. The classical, model-free nucleus segmentation
(threshold + watershed, op ``segment_nuclei``) is :mod:`.segment_classical`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyvips
from pydantic import Field

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class SegmentParams(Params):
    model: str = Field(
        "nuclei@production", min_length=1, max_length=200, description="name@alias or name:version"
    )
    threshold: float | None = Field(
        None, gt=0, lt=1, description="Probability cut (default: the model's own)."
    )
    scale: float = Field(
        1.0,
        ge=0.05,
        le=8,
        description="Resize the input by this first (0.5 for objects twice the trained size).",
    )
    output: Literal["mask", "probability", "overlay"] = Field(
        "mask", description="mask (0/255), probability (0..255), or overlay on the image"
    )


@register
class Segment(Operation[SegmentParams]):
    name = "segment"
    Params = SegmentParams
    summary = (
        "Segment with a registered model (e.g. nuclei@production): mask, probability or overlay."
    )
    queue = "segment"

    def apply(self, image: pyvips.Image, params: SegmentParams, ctx: OpContext) -> pyvips.Image:
        if ctx.resolve_model is None:
            raise InvalidParameter("segment needs the model service, which is not running here")
        predictor: Any = ctx.resolve_model(params.model)
        if image.hasalpha():
            image = image.extract_band(0, n=image.bands - 1)
        array = np.asarray(image.numpy())
        prediction = predictor.predict(array, threshold=params.threshold, scale=params.scale)
        if prediction.mask is None:
            raise InvalidParameter(f"model {params.model!r} is not a segmentation model")
        ctx.artifacts["segment"] = {
            "model": predictor.ref,
            "foreground_fraction": round(float((prediction.mask > 0).mean()), 6),
            "tiles": prediction.tiles,
        }
        if params.output == "mask":
            return pyvips.Image.new_from_array(prediction.mask).copy(interpretation="b-w")
        if params.output == "probability":
            prob = np.clip(prediction.probability * 255 + 0.5, 0, 255).astype(np.uint8)
            return pyvips.Image.new_from_array(prob).copy(interpretation="b-w")
        return _overlay(image, prediction.mask)


def _overlay(image: pyvips.Image, mask: np.ndarray) -> pyvips.Image:
    """The image as 8-bit RGB with the mask tinted red at 45 % and its outline solid."""
    from pixelmill.imaging.pixels import to_display

    base = to_display(image)
    if base.bands == 1:
        base = base.bandjoin([base, base])
    rgb = np.asarray(base.numpy(), dtype=np.float32)[..., :3]
    inside = mask > 0
    edge = inside & ~_erode(inside)
    red = np.array([255.0, 40.0, 40.0], dtype=np.float32)
    rgb[inside] = rgb[inside] * 0.55 + red * 0.45
    rgb[edge] = red
    return pyvips.Image.new_from_array(rgb.astype(np.uint8)).copy(interpretation="srgb")


def _erode(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out
