"""stain_normalize: Macenko or Reinhard stain normalisation of brightfield RGB."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyvips
from pydantic import Field, model_validator

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import from_array, to_array
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class StainNormalizeParams(Params):
    method: Literal["macenko", "reinhard"] = "macenko"
    reference: str | None = Field(
        None, max_length=128, description="Id of a stored image whose staining to match."
    )
    target_mean: tuple[float, float, float] | None = Field(
        None, description="Reinhard: target Lab means (L 0..100, a, b)."
    )
    target_std: tuple[float, float, float] | None = Field(
        None, description="Reinhard: target Lab standard deviations."
    )

    @model_validator(mode="after")
    def _target(self) -> StainNormalizeParams:
        if (self.target_mean is None) != (self.target_std is None):
            raise ValueError("give target_mean and target_std together")
        if self.method == "reinhard" and self.reference is None and self.target_mean is None:
            raise ValueError("reinhard needs a reference image or target_mean/target_std")
        return self


@register
class StainNormalize(Operation[StainNormalizeParams]):
    name = "stain_normalize"
    Params = StainNormalizeParams
    summary = "Normalise H&E staining to a reference (Macenko) or Lab statistics (Reinhard)."
    queue = "analyse"
    image_fields = ("reference",)
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True

    def apply(
        self, image: pyvips.Image, params: StainNormalizeParams, ctx: OpContext
    ) -> pyvips.Image:
        from pixelmill.imaging.analysis import stain

        arr, _ = to_array(image)
        ref = self._reference(params, ctx)
        if params.method == "macenko":
            target = stain.estimate_macenko(ref) if ref is not None else None
            source = stain.estimate_macenko(arr)
            ctx.artifacts["stains"] = {"source": source.to_json()}
            return from_array(stain.normalize_macenko(arr, target=target, source=source))
        if ref is not None:
            mean, std = stain.lab_statistics(ref)
        else:
            mean, std = np.asarray(params.target_mean), np.asarray(params.target_std)
        return from_array(stain.normalize_reinhard(arr, target_mean=mean, target_std=std))

    @staticmethod
    def _reference(params: StainNormalizeParams, ctx: OpContext) -> np.ndarray | None:
        if params.reference is None:
            return None
        if ctx.load_image is None:
            raise InvalidParameter("reference images are not available here")
        ref = pyvips.Image.new_from_buffer(ctx.load_image(params.reference), "")
        if ref.width * ref.height > 4_000_000:
            ref = ref.thumbnail_image(2000)
        return to_array(ref)[0]
