"""measure: per-object and per-image quantitative characteristics.

Reads the labels of an earlier segmentation step; measures intensities on the original
image; puts ``objects`` (pyarrow Table) and ``summary`` (JSON dict) into the artifacts.
The image passes through unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyvips
from pydantic import Field, field_validator

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import check_fits, get_labels, reference_image, to_array
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class MeasureParams(Params):
    intensity: Literal["original", "input"] = Field(
        "original", description="Measure intensities on the original image or this step's input."
    )
    stains: Literal["none", "he", "hdab", "hed"] = Field(
        "none", description="Add per-object stain OD means (brightfield RGB) and IHC results."
    )
    dab_thresholds: list[float] = Field(
        [0.2, 0.4, 0.6], description="Nucleus DAB OD thresholds: one (±) or three (1+, 2+, 3+)."
    )
    pixel_size_um: float | None = Field(
        None, gt=0, le=1000, allow_inf_nan=False, description="Overrides the image's pixel size."
    )
    channel_names: list[str] | None = Field(None, max_length=64)

    @field_validator("dab_thresholds")
    @classmethod
    def _thresholds(cls, value: list[float]) -> list[float]:
        if len(value) not in (1, 3) or sorted(value) != value or min(value) < 0:
            raise ValueError("one threshold, or three increasing ones (1+, 2+, 3+)")
        return value


@register
class Measure(Operation[MeasureParams]):
    name = "measure"
    Params = MeasureParams
    summary = "Object table (shape, intensity, stain OD) and image summary into artifacts."
    queue = "analyse"
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True
    reads_labels = True

    def apply(self, image: pyvips.Image, params: MeasureParams, ctx: OpContext) -> pyvips.Image:
        import pixelmill.imaging.analysis.measure as m
        import pixelmill.imaging.analysis.stain as stain

        labels = get_labels(ctx)
        if labels is not None:
            check_fits(ctx, labels, image)
        source = image if params.intensity == "input" else reference_image(ctx, labels, image)
        pixels, _ = to_array(source)
        if labels is not None and labels.shape != pixels.shape[:2]:
            raise InvalidParameter(
                "the labels no longer match the image: a step after the segmentation "
                "changed its geometry"
            )
        pixel_size = params.pixel_size_um or ctx.pixel_size_um
        maps: dict[str, np.ndarray] = {}
        dab: np.ndarray | None = None
        total_od: np.ndarray | None = None
        if params.stains != "none":
            # only the planes measured (4 bytes a pixel each), not the (H, W, 3)
            # concentrations and optical densities (12 each)
            names = stain.stains_of(params.stains)[1]
            keep = tuple(i for i, name in enumerate(names) if name != "residual")
            *planes, total_od = stain.stain_planes(
                pixels, stains=params.stains, keep=keep, total_od=True
            )
            maps = {f"{names[i]}_od": plane for i, plane in zip(keep, planes, strict=True)}
            dab = maps.get("dab_od")
        objects = None
        # DAB classes are of objects: without a segmentation only the area results remain
        dab_column = "dab_od_mean" if dab is not None and labels is not None else None
        if labels is not None:
            objects = m.measure_objects(
                labels,
                pixels,
                pixel_size_um=pixel_size,
                channel_names=params.channel_names,
                maps=maps,
            )
            if dab_column is not None:
                import pyarrow as pa

                classes = m.dab_classes(
                    objects.column(dab_column).to_numpy(), params.dab_thresholds
                )
                objects = objects.append_column("dab_class", pa.array(classes.astype(np.int64)))
        shape = pixels.shape[:2]
        tally = m.tally(
            labels,
            objects=objects,
            dab_od=dab,
            total_od=total_od,
            dab_column=dab_column,
            thresholds=params.dab_thresholds,
            shape=(int(shape[0]), int(shape[1])),
        )
        summary: dict[str, Any] = m.summarize(
            tally, pixel_size_um=pixel_size, thresholds=params.dab_thresholds
        )
        if labels is None:
            summary["object_count"] = None
            summary["note"] = "no segmentation step before measure: image-level results only"
        segmentation = ctx.artifacts.get("segmentation")
        if isinstance(segmentation, dict):
            summary["segmentation"] = segmentation
        if objects is not None:
            ctx.artifacts["objects"] = objects
        ctx.artifacts["summary"] = summary
        return image
