"""/v1/presets: the analysis presets a study may run, each with the JSON Schema of its
parameters, and the schema of a model analysis's parameters (what the run dialog's form
is generated from)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from pixelmill.imaging.analysis import presets
from pixelmill.imaging.ops.preset import preset_schema
from pixelmill.services.gateway.auth import require
from pixelmill.services.workspace.analyses import ModelAnalysisParams

router = APIRouter(prefix="/v1/presets", tags=["analyses"], dependencies=[Depends(require("read"))])


def _preset_json(ref: str) -> dict[str, Any]:
    return {**presets.get(ref).to_json(), "params": preset_schema(ref)}


@router.get(
    "",
    summary="Analysis presets (latest versions) with their parameter schemas, and the "
    "parameter schema of a model analysis",
)
def list_presets() -> dict[str, Any]:
    return {
        "items": [_preset_json(name) for name in presets.names()],
        "model_params": ModelAnalysisParams.model_json_schema(),
    }


@router.get("/{ref}", summary="One preset (name or name@version) with its parameter schema")
def get_preset(ref: str) -> dict[str, Any]:
    return _preset_json(ref)
