"""segment_nuclei: classical nucleus/cell segmentation to a label image.

Smoothing → threshold → opening → hole filling → distance-transform watershed → size
filter. The label image goes to ``ctx.artifacts["labels"]`` (see ``_analysis``), the
decisions to ``ctx.artifacts["segmentation"]``; the step's output image is the labels
(default), the mask, or its input unchanged. No model is involved; segmentation with a
trained model (op ``segment``) is :mod:`.segment_model`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyvips
from pydantic import Field, model_validator

from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import labels_image, put_labels, to_array
from pixelmill.imaging.ops._base import OpContext, Operation, Params

if TYPE_CHECKING:
    from pixelmill.imaging.analysis.segment import Segmentation

ChannelName = Literal["auto", "hematoxylin", "eosin", "dab", "nuclear", "od"]


class SegmentNucleiParams(Params):
    channel: int | ChannelName = Field(
        "auto",
        description="Channel index, or auto (grey/luminance/channel 0), or a stain of RGB "
        "brightfield: hematoxylin, eosin, dab, nuclear (H + DAB), od (optical density).",
    )
    foreground: Literal["auto", "bright", "dark"] = Field(
        "auto", description="auto: dark for RGB luminance, bright otherwise (stains, fluorescence)."
    )
    sigma: float = Field(1.0, ge=0, le=20, allow_inf_nan=False, description="Smoothing, px.")
    method: Literal["otsu", "li", "triangle", "yen", "isodata", "mean", "local"] = "otsu"
    threshold: float | None = Field(
        None,
        allow_inf_nan=False,
        description="Fixed threshold on the common scale (ints / full scale); overrides method.",
    )
    block_size: int = Field(51, ge=3, le=1001, description="Local method window, px (odd).")
    offset: float = Field(0.0, ge=-1, le=1, allow_inf_nan=False, description="Local offset.")
    opening_radius: int = Field(1, ge=0, le=20, description="Opening disk radius, px.")
    fill_holes: bool = True
    max_hole_area: int | None = Field(None, ge=1, description="Largest hole filled, px.")
    split: bool = Field(True, description="Split touching objects (watershed).")
    min_distance: float | None = Field(
        None, gt=0, le=500, allow_inf_nan=False, description="Marker spacing, px (auto)."
    )
    min_area: int = Field(20, ge=1, description="Smallest object kept, px.")
    max_area: int | None = Field(None, ge=1, description="Largest object kept, px.")
    exclude_border: bool = Field(False, description="Drop objects touching the image edge.")
    min_snr: float = Field(
        3.0, ge=0, le=100, allow_inf_nan=False, description="Contrast/noise below which: 0 objects."
    )
    output: Literal["labels", "mask", "input"] = Field(
        "labels", description="Output image: labels (16/32-bit), mask (0/255) or the input."
    )

    @model_validator(mode="after")
    def _check(self) -> SegmentNucleiParams:
        if self.block_size % 2 == 0:
            raise ValueError("block_size must be odd")
        if self.max_area is not None and self.max_area < self.min_area:
            raise ValueError("max_area must be >= min_area")
        return self


@register
class SegmentNuclei(Operation[SegmentNucleiParams]):
    name = "segment_nuclei"
    Params = SegmentNucleiParams
    summary = "Threshold + watershed segmentation of nuclei/cells; labels in artifacts."
    queue = "analyse"
    makes_labels = True
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True

    def apply(
        self, image: pyvips.Image, params: SegmentNucleiParams, ctx: OpContext
    ) -> pyvips.Image:
        # the pixels are run's alone: it lets them go once it has the plane to segment
        result, foreground = run(to_array(image)[0], params)
        info = {
            "op": self.name,
            "object_count": result.count,
            "threshold": None if math.isnan(result.threshold) else round(result.threshold, 6),
            "foreground": foreground,
            "min_distance_px": round(result.min_distance, 3),
            "rejected": result.rejected,
            "label_dtype": str(result.labels.dtype),
        }
        put_labels(ctx, result.labels, info, image)
        if params.output == "labels":
            return labels_image(result.labels)
        if params.output == "mask":
            return pyvips.Image.new_from_array(
                (result.labels > 0).astype(np.uint8) * np.uint8(255), interpretation="b-w"
            )
        return image


def run(
    arr: np.ndarray,
    params: SegmentNucleiParams,
    *,
    fixed_threshold: float | None = None,
    min_distance: float | None = None,
) -> tuple[Segmentation, str]:
    """Segment a numpy image with these parameters (also used by whole-slide tiling,
    which fixes the threshold and marker distance found on a sample of the slide)."""
    from pixelmill.imaging.analysis.segment import pick_channel, segment_nuclei

    foreground = params.foreground
    if foreground == "auto":
        rgb_grey = params.channel == "auto" and arr.ndim == 3 and arr.shape[2] == 3
        foreground = "dark" if rgb_grey else "bright"
    plane = pick_channel(arr, params.channel)
    del arr  # an RGB image (3 bytes a pixel) is not needed beside its stain plane
    result = segment_nuclei(
        plane,
        sigma=params.sigma,
        method=params.method,
        fixed_threshold=params.threshold if fixed_threshold is None else fixed_threshold,
        foreground=foreground,
        block_size=params.block_size,
        offset=params.offset,
        opening_radius=params.opening_radius,
        fill=params.fill_holes,
        max_hole_area=params.max_hole_area,
        split=params.split,
        min_distance=params.min_distance if min_distance is None else min_distance,
        min_area=params.min_area,
        max_area=params.max_area,
        exclude_border=params.exclude_border,
        min_snr=params.min_snr,
    )
    return result, foreground
