"""preset: run a named, versioned analysis pipeline (see ``imaging.analysis.presets``)."""

from __future__ import annotations

from typing import Any

import pyvips
from pydantic import Field, PrivateAttr, model_validator

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.ops import register
from pixelmill.imaging.ops._base import OpContext, Operation, Params, Step


class PresetParams(Params):
    name: str = Field(..., min_length=1, max_length=80, description="Preset name, or name@version.")
    overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Op name → parameters merged into that step."
    )
    _steps: list[Step] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _expand(self) -> PresetParams:
        from pixelmill.imaging import ops
        from pixelmill.imaging.analysis import presets

        try:
            specs = presets.expand(self.name, self.overrides)
            if any(s["op"] == "preset" for s in specs):
                raise ValueError("presets do not nest")
            self._steps = ops.parse_pipeline(specs)
        except InvalidParameter as exc:
            detail = exc.detail
            known = exc.extra.get("known")
            errors = exc.extra.get("errors")
            if known:
                detail += f" (known: {', '.join(map(str, known))})"
            if errors:
                detail += ": " + "; ".join(f"{e['loc']}: {e['msg']}" for e in errors)
            raise ValueError(detail) from None
        return self

    def steps(self) -> list[Step]:
        return list(self._steps)


@register
class Preset(Operation[PresetParams]):
    name = "preset"
    Params = PresetParams
    summary = "A named, versioned analysis pipeline (nuclei-fluorescence, he-nuclei, ...)."
    queue = "analyse"
    # reads all pixels into numpy, and later steps re-read ctx.original: random access
    geometric = True

    def apply(self, image: pyvips.Image, params: PresetParams, ctx: OpContext) -> pyvips.Image:
        from pixelmill.imaging.analysis import presets

        preset = presets.get(params.name)
        for step in params.steps():
            image = step.op.apply(image, step.params, ctx)
        summary = ctx.artifacts.get("summary")
        if isinstance(summary, dict):
            summary["preset"] = preset.ref
        ctx.artifacts["preset"] = {"ref": preset.ref, "overrides": params.overrides}
        return image

    def images_read(self, params: PresetParams) -> list[str]:
        # an override may name one (stain_normalize's reference)
        return [i for step in params.steps() for i in step.op.images_read(step.params)]

    def leaves_labels(self, params: PresetParams) -> bool:
        return any(step.op.leaves_labels(step.params) for step in params.steps())


def preset_schema(ref: str) -> dict[str, Any]:
    """The JSON Schema of a preset analysis's ``params``: ``{"overrides": {op: {...}}}``
    with one object per step holding the parameters the preset sets, each with the
    preset's value as its ``default`` (what a run dialog shows and may change).

    Examples
    --------
    >>> s = preset_schema("he-nuclei@1")["properties"]["overrides"]["properties"]
    >>> s["segment_nuclei"]["properties"]["min_area"]["default"]
    40
    """
    from pixelmill.imaging import ops
    from pixelmill.imaging.analysis import presets

    preset = presets.get(ref)
    steps: dict[str, Any] = {}
    for step in preset.steps:
        full = ops.get(step["op"]).Params.model_json_schema()
        given = {k: v for k, v in step.items() if k != "op"}
        props = {
            k: {**full["properties"][k], "default": v}
            for k, v in given.items()
            if k in full.get("properties", {})
        }
        schema: dict[str, Any] = {
            "type": "object",
            "title": step["op"],
            "properties": props,
            "additionalProperties": False,
        }
        if "$defs" in full:
            schema["$defs"] = full["$defs"]
        steps[step["op"]] = schema
    return {
        "type": "object",
        "title": preset.title,
        "description": preset.description,
        "properties": {
            "overrides": {
                "type": "object",
                "title": "Overrides",
                "description": "Op name → parameters merged into that step.",
                "properties": steps,
                "additionalProperties": False,
            }
        },
        "additionalProperties": False,
    }
