"""deconvolve: colour deconvolution of brightfield RGB into stains (H&E, H-DAB, HED)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyvips
from pydantic import Field

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._analysis import from_array, to_array
from pixelmill.imaging.ops._base import OpContext, Operation, Params


class DeconvolveParams(Params):
    stains: Literal["he", "hdab", "hed"] = Field(
        "hdab", description="Stain vectors: he (H, E), hdab (H, DAB), hed (H, E, DAB)."
    )
    stain: Literal["hematoxylin", "eosin", "dab", "residual"] | None = Field(
        None, description="One stain to keep; all three channels when not given."
    )
    output: Literal["rgb", "od"] = Field(
        "rgb",
        description="rgb: the kept stain rendered in its colour (8-bit); "
        "od: concentrations in optical density units (float32).",
    )


@register
class Deconvolve(Operation[DeconvolveParams]):
    name = "deconvolve"
    Params = DeconvolveParams
    summary = "Separate stains (Ruifrok & Johnston); a stain's colour view or OD channels."
    queue = "transform"
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True

    def apply(self, image: pyvips.Image, params: DeconvolveParams, ctx: OpContext) -> pyvips.Image:
        from pixelmill.imaging.analysis.stain import deconvolve, render_stains, stains_of

        arr, _ = to_array(image)
        names = stains_of(params.stains)[1]
        if params.stain is not None and params.stain not in names:
            raise InvalidParameter(
                f"stain {params.stain!r} is not in the {params.stains!r} set", known=list(names)
            )
        keep = (names.index(params.stain),) if params.stain else (0, 1, 2)
        if params.output == "rgb":  # without the whole image's concentrations
            return from_array(render_stains(arr, stains=params.stains, keep=keep))
        conc = deconvolve(arr, stains=params.stains)
        out = conc[..., keep[0]] if len(keep) == 1 else conc
        return from_array(np.ascontiguousarray(out, np.float32))
