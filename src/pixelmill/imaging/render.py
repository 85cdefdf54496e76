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
from typing import Any, Literal, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pixelmill.errors import InvalidParameter
from pixelmill.imaging import ops
from pixelmill.imaging.colour import IccMode
from pixelmill.imaging.formats import ImageFormat, parse_format
from pixelmill.imaging.geometry import Colour, Gravity, SmartGravity
from pixelmill.imaging.ops import bounds_of
from pixelmill.imaging.ops.adjust import AdjustParams
from pixelmill.imaging.ops.blur import BlurParams
from pixelmill.imaging.ops.clahe import ClaheParams
from pixelmill.imaging.ops.composite import ChannelList, CompositeParams
from pixelmill.imaging.ops.pixelate_faces import PixelateFacesParams
from pixelmill.imaging.ops.preset import PresetParams
from pixelmill.imaging.ops.resize import Fit, ResizeParams
from pixelmill.imaging.ops.rotate import RotateParams
from pixelmill.imaging.ops.sharpen import SharpenParams
from pixelmill.imaging.ops.trim import TrimParams
from pixelmill.imaging.ops.watermark import WatermarkParams

#: bump when rendering changes output bytes, so caches and ETags roll over
RENDER_VERSION = "4"

#: query keys that are not render parameters (signature, its expiry and key id, cache busting)
RESERVED = frozenset({"sig", "expires", "kid", "v"})

#: the resize op's range for output sides; the upper bound is also capped by the
#: configured ``render.max_output_side`` (see :func:`parse_render`)
_SIDE = bounds_of(ResizeParams, "width")
_SIDE_MIN = {k: v for k, v in _SIDE.items() if k in ("ge", "gt")}

OutputName = Literal["jpeg", "png", "webp", "avif", "tiff", "gif", "auto"]


def _numbers(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(","))
    return value


class RenderParams(BaseModel):
    """Everything a ``GET /v1/images/{id}/render`` query may say."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    w: int | None = Field(None, description="Output width, pixels.", **_SIDE_MIN)
    h: int | None = Field(None, description="Output height, pixels.", **_SIDE_MIN)
    dpr: float = Field(1.0, ge=1, le=4, description="Device pixel ratio: multiplies sizes.")
    zoom: float = Field(1.0, gt=0, le=8, description="Multiplies the output size.")
    min_w: int | None = Field(
        None,
        validation_alias=AliasChoices("min-w", "min_w"),
        **_SIDE_MIN,
        description="Least output width (scales less far down; with enlarge, up).",
    )
    min_h: int | None = Field(
        None,
        validation_alias=AliasChoices("min-h", "min_h"),
        **_SIDE_MIN,
        description="Least output height.",
    )
    fit: Fit = "cover"
    enlarge: bool = Field(
        False, description="Allow scaling a small image up; off, no fit mode enlarges."
    )
    gravity: Gravity | SmartGravity = "centre"
    offset: tuple[int, int] | None = Field(
        None, description="Gravity offset 'x,y' in pixels, inward from the gravity edge."
    )
    fp: tuple[float, float] | None = Field(None, description="Focal point 'x,y', fractions 0..1.")
    crop: tuple[int | float, ...] | None = Field(
        None,
        description="Source box 'left,top,width,height' or 'width,height' (placed by "
        "gravity), before resizing; numbers in (0,1) are fractions of the image.",
    )
    trim: float | None = Field(None, **bounds_of(TrimParams, "threshold"))
    trim_colour: Colour | None = Field(None, description="Border colour trim removes.")
    trim_corner: Literal["top-left", "bottom-right"] = Field(
        "top-left", description="Corner whose pixel is the border colour (no trim_colour)."
    )
    pad: tuple[int, ...] | None = Field(
        None, description="Margins 'all', 'vertical,horizontal' or 'top,right,bottom,left'."
    )
    extend: bool = Field(False, description="Extend a smaller result to the w x h box.")
    rotate: float | None = Field(None, **bounds_of(RotateParams, "angle"))
    bg: Colour | None = Field(
        None,
        description="Background for rotate, contain, pad and extend (default black) and "
        "under transparency flattened into JPEG (default white).",
    )
    blur_faces: bool = Field(False, description="Blur every detected face (privacy).")
    pixelate_faces: int | None = Field(
        None,
        description="Pixelate every detected face, blocks this many pixels (privacy).",
        **bounds_of(PixelateFacesParams, "block"),
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
    channels: ChannelList | None = Field(
        None,
        description="Fluorescence: 'none' or 'index:rrggbb,...'.",
        **bounds_of(CompositeParams, "channels"),
    )
    frame: int | None = Field(None, ge=0, description="Take this frame of an animation.")
    page: int | None = Field(None, ge=0, description="Take this page of a multi-page image.")
    format: OutputName | None = None
    q: int | None = Field(None, ge=1, le=100, description="Encoder quality.")
    max_bytes: int | None = Field(
        None, ge=256, description="Lower the quality until the output is at most this big."
    )
    progressive: bool = Field(False, description="Progressive JPEG, interlaced PNG/GIF.")
    lossless: bool = Field(False, description="Lossless WebP.")
    strip: bool = Field(True, description="Strip EXIF/XMP metadata.")
    icc: IccMode = Field(
        "srgb",
        description="'srgb' converts an embedded colour profile to sRGB; 'keep' keeps an "
        "RGB profile, embedded in the output, and the pixels as they are.",
    )
    depth: Literal[8, 16] = Field(
        16, description="Most bits per channel: 16 keeps 16-bit sources in PNG and TIFF."
    )

    @field_validator("fp", "crop", "offset", "pad", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _numbers(value)

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
        if self.crop is not None:
            _check_crop(self.crop)
        if self.pad is not None and (len(self.pad) not in (1, 2, 4) or min(self.pad) < 0):
            raise ValueError("pad is 1, 2 or 4 margins >= 0 (CSS order)")
        if self.wm and self.wm_text:
            raise ValueError("give wm (image) or wm_text, not both")
        if self.frame is not None and self.page is not None:
            raise ValueError("give frame (animations) or page (multi-page images), not both")
        return self


def _check_crop(crop: tuple[float, ...]) -> None:
    if len(crop) not in (2, 4) or not all(math.isfinite(v) for v in crop):
        raise ValueError("crop is 'left,top,width,height' or 'width,height'")
    if min(crop) < 0 or min(crop[-2:]) <= 0:
        raise ValueError("crop numbers are >= 0, width and height > 0")
    if any(v > 1 and v != int(v) for v in crop):
        raise ValueError("crop numbers are whole pixels, or fractions between 0 and 1")


def parse_render(
    query: Mapping[str, str],
    *,
    max_side: int,
    presets: Mapping[str, Mapping[str, Any]] | None = None,
) -> RenderParams:
    """Validate a query mapping; unknown keys and out-of-range values raise 422.

    ``preset=a,b`` starts from the named ``presets`` (later ones win), then the query's
    own parameters override them.
    """
    raw: dict[str, Any] = {}
    for name in _preset_names(query.get("preset")):
        if presets is None or name not in presets:
            known = sorted(presets or {})
            raise InvalidParameter(f"unknown preset {name!r}", known=known)
        raw.update(presets[name])
    raw.update({k: v for k, v in query.items() if k not in RESERVED and k != "preset"})
    try:
        params = RenderParams.model_validate(raw)
    except ValidationError as exc:
        raise InvalidParameter(
            "invalid render parameters", errors=ops.validation_errors(exc)
        ) from None
    # the configured limit, and never above what the resize op itself accepts
    limit = min(max_side, _SIDE.get("le", max_side))
    for name in ("w", "h", "min_w", "min_h"):
        value = getattr(params, name)
        if value is not None and value > limit:
            raise InvalidParameter(
                f"{name}={value} is above the largest allowed output side {limit}",
                errors=[{"loc": name, "msg": f"must be <= {limit}"}],
            )
    if params.pad is not None and max(params.pad) * params.dpr > limit // 4:
        raise InvalidParameter(
            f"pad margins are at most {limit // 4} pixels (after dpr)",
            errors=[{"loc": "pad", "msg": f"must be <= {limit // 4}"}],
        )
    return params


def _preset_names(value: str | None) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()] if value else []


_BLACK = (0, 0, 0, 255)


def _sized(p: RenderParams, max_side: int) -> dict[str, Any]:
    """The resize step's sizes: the query's, times ``dpr`` and ``zoom``, capped (keeping
    the box's aspect ratio) so no side exceeds ``max_side``."""
    factor = p.dpr * p.zoom
    sizes = {
        k: None if v is None else max(1, round(v * factor))
        for k, v in (
            ("width", p.w),
            ("height", p.h),
            ("min_width", p.min_w),
            ("min_height", p.min_h),
        )
    }
    longest = max((v for v in sizes.values() if v is not None), default=0)
    if longest > max_side:
        sizes = {
            k: None if v is None else max(1, v * max_side // longest) for k, v in sizes.items()
        }
    if all(v is None for v in sizes.values()):
        return {"scale": factor, "max_side": max_side} if factor != 1 else {}
    return sizes


def to_steps(p: RenderParams, *, max_side: int = 8192) -> list[ops.Step]:
    """The registry steps a render performs, in canonical order."""
    # faces are hidden first, at full size: found on the output, small ones could be missed
    specs: list[dict[str, Any]] = [{"op": "blur_faces"}] if p.blur_faces else []
    if p.pixelate_faces:
        specs.append({"op": "pixelate_faces", "block": p.pixelate_faces})
    if p.trim is not None:
        trim = {"op": "trim", "threshold": p.trim, "colour": p.trim_colour}
        specs.append({**trim, "corner": p.trim_corner})
    if p.crop is not None:
        specs.append(_crop_step(p))
    sizes = _sized(p, max_side)
    if sizes:
        resize: dict[str, Any] = {"op": "resize", "fit": p.fit, "max_side": max_side, **sizes}
        resize.update(gravity=p.gravity, background=p.bg or _BLACK, enlarge=p.enlarge)
        if p.fp is not None:
            resize["focal"] = p.fp
        if p.offset is not None:
            resize["offset"] = tuple(round(v * p.dpr) for v in p.offset)
        specs.append(resize)
    if p.extend or p.pad:
        specs.append(_pad_step(p, sizes))
    if p.rotate:
        specs.append({"op": "rotate", "angle": p.rotate, "background": p.bg or _BLACK})
    if p.flip:
        specs.append({"op": "flip", "direction": "vertical"})
    if p.flop:
        specs.append({"op": "flip", "direction": "horizontal"})
    specs.extend(_tone_steps(p))
    return [ops.parse_step(spec, index=i) for i, spec in enumerate(specs)]


def _crop_step(p: RenderParams) -> dict[str, Any]:
    assert p.crop is not None
    step: dict[str, Any] = {"op": "crop", "width": p.crop[-2], "height": p.crop[-1]}
    if len(p.crop) == 4:
        step.update(left=p.crop[0], top=p.crop[1])
    else:
        step["gravity"] = p.gravity if p.gravity not in get_args(SmartGravity) else "centre"
        step["offset"] = p.offset or (0, 0)
    return step


def _pad_step(p: RenderParams, sizes: dict[str, Any]) -> dict[str, Any]:
    step: dict[str, Any] = {"op": "pad", "background": p.bg or _BLACK}
    if p.extend:
        step.update(width=sizes.get("width"), height=sizes.get("height"))
        step["gravity"] = p.gravity if p.gravity not in get_args(SmartGravity) else "centre"
    if p.pad:
        m = [round(v * p.dpr) for v in p.pad]
        top, right, bottom, left = m * 4 if len(m) == 1 else (m * 2 if len(m) == 2 else m)[:4]
        step.update(top=top, right=right, bottom=bottom, left=left)
    return step


def _tone_steps(p: RenderParams) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    if p.channels is not None:
        shown = [c for c, _ in p.channels]
        specs.append({"op": "composite", "channels": shown, "colours": [c for _, c in p.channels]})
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
    return specs


def output_format(
    p: RenderParams, source: ImageFormat, *, animated: bool = False
) -> ImageFormat | Literal["auto"]:
    """The requested output format; without ``format`` the source's own (an animated GIF
    stays GIF; other GIFs and TIFFs become PNG)."""
    if p.format == "auto":
        return "auto"
    if p.format is not None:
        return ImageFormat(p.format)
    if source is ImageFormat.GIF and animated and p.frame is None:
        return ImageFormat.GIF
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
