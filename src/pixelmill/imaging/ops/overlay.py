"""overlay: draw the segmented objects over the original image (contours or fills)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyvips
from pydantic import Field

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.geometry import Colour
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import (
    check_fits,
    from_array,
    get_labels,
    reference_image,
    to_array,
)
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class OverlayParams(Params):
    style: Literal["contour", "fill", "both"] = "contour"
    colour_by: Literal["fixed", "label", "class"] = Field(
        "fixed", description="One colour, a colour per object, or by DAB class (after measure)."
    )
    colour: Colour = Field((255, 255, 0, 255), description="Colour of colour_by=fixed.")
    alpha: float = Field(1.0, ge=0, le=1, allow_inf_nan=False, description="Contour opacity.")
    fill_alpha: float = Field(0.35, ge=0, le=1, allow_inf_nan=False, description="Fill opacity.")
    thickness: int = Field(1, ge=1, le=20, description="Contour thickness, px.")
    base: Literal["original", "input"] = Field(
        "original", description="Draw over the original image or this step's input."
    )


@register
class Overlay(Operation[OverlayParams]):
    name = "overlay"
    Params = OverlayParams
    summary = "Contours or fills of the segmented objects over the original (8-bit RGB)."
    queue = "transform"
    needs_labels = True
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True
    reads_labels = True

    def apply(self, image: pyvips.Image, params: OverlayParams, ctx: OpContext) -> pyvips.Image:
        from pixelmill.imaging.analysis.overlay import overlay

        labels = get_labels(ctx)
        if labels is None:
            raise InvalidParameter("overlay needs a segmentation step (e.g. segment_nuclei) first")
        check_fits(ctx, labels, image)
        base = image if params.base == "input" else reference_image(ctx, labels, image)
        pixels, _ = to_array(base)
        if pixels.shape[:2] != labels.shape:
            raise InvalidParameter(
                "the labels no longer match the image: a step after the segmentation "
                "changed its geometry"
            )
        palette = None
        colour: tuple[int, int, int] | None = tuple(params.colour[:3])  # type: ignore[assignment]
        if params.colour_by == "label":
            colour = None
        elif params.colour_by == "class":
            palette = _class_palette(ctx, int(labels.max()) if labels.size else 0)
            colour = None
        out = overlay(
            pixels,
            labels,
            style=params.style,
            colour=colour,
            alpha=params.alpha * params.colour[3] / 255,
            fill_alpha=params.fill_alpha,
            thickness=params.thickness,
            palette=palette,
        )
        return from_array(out)


def _class_palette(ctx: OpContext, top: int) -> np.ndarray:
    from pixelmill.imaging.analysis.overlay import CLASS_COLOURS

    objects = ctx.artifacts.get("objects")
    names = getattr(objects, "column_names", [])
    if "dab_class" not in names:
        raise InvalidParameter(
            "colour_by=class needs a measure step with stains=hdab (or hed) first"
        )
    assert objects is not None
    palette = np.zeros((top + 1, 3), np.uint8)
    labels = objects.column("label").to_numpy()
    classes = objects.column("dab_class").to_numpy()
    ok = labels <= top
    palette[labels[ok]] = CLASS_COLOURS[np.clip(classes[ok], 0, 3)]
    return palette
