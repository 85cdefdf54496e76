"""Render requests: query-string parameters parsed into a pipeline and an output spec.

The query vocabulary (``w``, ``h``, ``fit``, ``blur`` ...) is sugar over the operation
registry: every parameter becomes a registry step, in a fixed canonical order, so a
render and the equivalent JSON pipeline give identical pixels. A parameter that feeds an
operation's field takes its accepted range from that field (:func:`ops.bounds_of`), so
each bound is written once, in the operation's spec.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pixelmill.errors import InvalidParameter
from pixelmill.imaging import ops
from pixelmill.imaging.colour import IccMode
from pixelmill.imaging.formats import ImageFormat, parse_format
from pixelmill.imaging.geometry import Colour, Gravity, SmartGravity
from pixelmill.imaging.ops import bounds_of
from pixelmill.imaging.ops.adjust import AdjustParams
from pixelmill.imaging.ops.blur import BlurParams
from pixelmill.imaging.ops.clahe import ClaheParams
from pixelmill.imaging.ops.crop import CropParams
from pixelmill.imaging.ops.preset import PresetParams
from pixelmill.imaging.ops.resize import Fit, ResizeParams
from pixelmill.imaging.ops.rotate import RotateParams
from pixelmill.imaging.ops.sharpen import SharpenParams
from pixelmill.imaging.ops.watermark import WatermarkParams

#: bump when rendering changes output bytes, so caches and ETags roll over
RENDER_VERSION = "2"

#: query keys that are not render parameters (signature, its expiry and key id, cache busting)
RESERVED = frozenset({"sig", "expires", "kid", "v"})


#: the resize op's range for output sides; the upper bound is also capped by the
#: configured ``render.max_output_side`` (see :func:`parse_render`)
_SIDE = bounds_of(ResizeParams, "width")
_SIDE_MIN = {k: v for k, v in _SIDE.items() if k in ("ge", "gt")}
#: crop box corner and size minimums, from the crop op
_CROP_LEFT_MIN = bounds_of(CropParams, "left")["ge"]
_CROP_WIDTH_MIN = bounds_of(CropParams, "width")["ge"]


def _pair(value: Any) -> Any:
    if isinstance(value, str):
        parts = value.split(",")
        return tuple(p.strip() for p in parts)
    return value


class RenderParams(BaseModel):
    """Everything a ``GET /v1/images/{id}/render`` query may say."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    w: int | None = Field(None, description="Output width, pixels.", **_SIDE_MIN)
    h: int | None = Field(None, description="Output height, pixels.", **_SIDE_MIN)
    fit: Fit = "cover"
    enlarge: bool = Field(
        False, description="Allow scaling a small image up; off, no fit mode enlarges."
    )
    gravity: Gravity | SmartGravity = "centre"
    fp: tuple[float, float] | None = Field(None, description="Focal point 'x,y', fractions 0..1.")
    crop: tuple[int, int, int, int] | None = Field(
        None, description="Source box 'left,top,width,height' in pixels, before resizing."
    )
    rotate: float | None = Field(None, **bounds_of(RotateParams, "angle"))
    bg: Colour | None = Field(
        None,
        description="Background for rotate and contain (default black) and under "
        "transparency flattened into JPEG (default white).",
    )
    flip: bool = Field(False, description="Mirror top-bottom.")
    flop: bool = Field(False, description="Mirror left-right.")
    orient: bool = Field(True, description="Auto-orient from EXIF.")
    blur: float | None = Field(None, **bounds_of(BlurParams, "sigma"))
    sharpen: float | None = Field(None, **bounds_of(SharpenParams, "sigma"))
    grayscale: bool = False
    brightness: float = Field(1.0, **bounds_of(AdjustParams, "brightness"))
    contrast: float = Field(1.0, **bounds_of(AdjustParams, "contrast"))
    gamma: float = Field(1.0, **bounds_of(AdjustParams, "gamma"))
    wm: str | None = Field(
        None, description="Watermark image id.", **bounds_of(WatermarkParams, "image")
    )
    wm_text: str | None = Field(
        None, description="Watermark text.", **bounds_of(WatermarkParams, "text")
    )
    wm_pos: Gravity = "southeast"
    wm_opacity: float = Field(0.5, **bounds_of(WatermarkParams, "opacity"))
    wm_scale: float = Field(0.25, **bounds_of(WatermarkParams, "scale"))
    clahe: float | None = Field(
        None, description="CLAHE clip limit (analysis).", **bounds_of(ClaheParams, "clip_limit")
    )
    unmix: Literal["hematoxylin", "eosin", "dab"] | None = Field(
        None, description="Show one stain of a brightfield image (colour deconvolution)."
    )
    analysis: str | None = Field(
        None,
        description="Analysis preset to draw, e.g. he-nuclei.",
        **bounds_of(PresetParams, "name"),
    )
    compare: bool = Field(False, description="Original and result side by side.")
    format: Literal["jpeg", "png", "webp", "avif", "tiff", "auto"] | None = None
    q: int | None = Field(None, ge=1, le=100, description="Encoder quality.")
    strip: bool = Field(True, description="Strip EXIF/XMP metadata.")
    icc: IccMode = Field(
        "srgb",
        description="'srgb' converts an embedded colour profile to sRGB; 'keep' keeps an "
        "RGB profile, embedded in the output, and the pixels as they are.",
    )
    depth: Literal[8, 16] = Field(
        16, description="Most bits per channel: 16 keeps 16-bit sources in PNG and TIFF."
    )

    @field_validator("fp", "crop", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _pair(value)

    @field_validator("depth", mode="before")
    @classmethod
    def _depth(cls, value: Any) -> Any:
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() != "auto":
            try:
                return parse_format(value).value
            except ValueError:
                return value
        return value

    @model_validator(mode="after")
    def _check(self) -> RenderParams:
        if self.fp is not None and not all(0 <= v <= 1 and math.isfinite(v) for v in self.fp):
            raise ValueError("fp is 'x,y' with fractions between 0 and 1")
        if self.crop is not None and (
            min(self.crop[:2]) < _CROP_LEFT_MIN or min(self.crop[2:]) < _CROP_WIDTH_MIN
        ):
            raise ValueError(
                f"crop is 'left,top,width,height' with width and height >= {_CROP_WIDTH_MIN}"
            )
        if self.wm and self.wm_text:
            raise ValueError("give wm (image) or wm_text, not both")
        return self


def parse_render(query: Mapping[str, str], *, max_side: int) -> RenderParams:
    """Validate a query mapping; unknown keys and out-of-range values raise 422."""
    raw = {k: v for k, v in query.items() if k not in RESERVED}
    try:
        params = RenderParams.model_validate(raw)
    except ValidationError as exc:
        raise InvalidParameter(
            "invalid render parameters", errors=ops.validation_errors(exc)
        ) from None
    # the configured limit, and never above what the resize op itself accepts
    limit = min(max_side, _SIDE.get("le", max_side))
    for name in ("w", "h"):
        value = getattr(params, name)
        if value is not None and value > limit:
            raise InvalidParameter(
                f"{name}={value} is above the largest allowed output side {limit}",
                errors=[{"loc": name, "msg": f"must be <= {limit}"}],
            )
    return params


_BLACK = (0, 0, 0, 255)


def to_steps(p: RenderParams) -> list[ops.Step]:
    """The registry steps a render performs, in canonical order."""
    specs: list[dict[str, Any]] = []
    if p.crop is not None:
        left, top, width, height = p.crop
        specs.append({"op": "crop", "left": left, "top": top, "width": width, "height": height})
    if p.w is not None or p.h is not None:
        resize: dict[str, Any] = {"op": "resize", "width": p.w, "height": p.h, "fit": p.fit}
        resize.update(gravity=p.gravity, background=p.bg or _BLACK, enlarge=p.enlarge)
        if p.fp is not None:
            resize["focal"] = p.fp
        specs.append(resize)
    if p.rotate:
        specs.append({"op": "rotate", "angle": p.rotate, "background": p.bg or _BLACK})
    if p.flip:
        specs.append({"op": "flip", "direction": "vertical"})
    if p.flop:
        specs.append({"op": "flip", "direction": "horizontal"})
    if p.clahe:
        specs.append({"op": "clahe", "clip_limit": p.clahe})
    if p.unmix:
        stains = "he" if p.unmix == "eosin" else "hdab"
        specs.append({"op": "deconvolve", "stains": stains, "stain": p.unmix, "output": "rgb"})
    if p.analysis:
        specs.append({"op": "preset", "name": p.analysis})
    if p.compare:
        specs.append({"op": "side_by_side"})
    if (p.brightness, p.contrast, p.gamma) != (1.0, 1.0, 1.0):
        specs.append(
            {"op": "adjust", "brightness": p.brightness, "contrast": p.contrast, "gamma": p.gamma}
        )
    if p.grayscale:
        specs.append({"op": "grayscale"})
    if p.blur:
        specs.append({"op": "blur", "sigma": p.blur})
    if p.sharpen:
        specs.append({"op": "sharpen", "sigma": p.sharpen})
    if p.wm or p.wm_text:
        mark: dict[str, Any] = {"op": "watermark", "position": p.wm_pos}
        mark.update(opacity=p.wm_opacity, scale=p.wm_scale)
        mark.update({"image": p.wm} if p.wm else {"text": p.wm_text})
        specs.append(mark)
    return [ops.parse_step(spec, index=i) for i, spec in enumerate(specs)]


def output_format(p: RenderParams, source: ImageFormat) -> ImageFormat | Literal["auto"]:
    """The requested output format; without ``format`` the source's own (GIF and TIFF become PNG)."""
    if p.format == "auto":
        return "auto"
    if p.format is not None:
        return ImageFormat(p.format)
    if source in (ImageFormat.GIF, ImageFormat.TIFF):
        return ImageFormat.PNG
    return source


def cache_key(image_id: str, p: RenderParams, fmt: ImageFormat, quality: int) -> str:
    """A stable digest of everything that determines the output bytes (the strong ETag)."""
    body = p.model_dump(mode="json", exclude={"format", "q"})
    text = json.dumps(
        [RENDER_VERSION, image_id, body, fmt.value, quality], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode()).hexdigest()
