"""The JSON Schemas the web UI's form tests read (web/tests/fixtures/schemas.json) are
the ones the API serves: regenerate the file when a preset, the model analysis params
or the training spec change (the assertion message says how)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pixelmill.imaging.ops.preset import preset_schema
from pixelmill.ml.spec import TrainSpec
from pixelmill.services.gateway.routes.study_training import NewLoop
from pixelmill.services.workspace.analyses import ModelAnalysisParams

FIXTURE = Path(__file__).resolve().parents[4] / "web" / "tests" / "fixtures" / "schemas.json"


def current() -> dict[str, Any]:
    return {
        "he_nuclei": preset_schema("he-nuclei"),
        "model_params": ModelAnalysisParams.model_json_schema(),
        "train_spec": TrainSpec.model_json_schema(),
        "training_loop": NewLoop.model_json_schema(),
    }


def test_the_ui_tests_read_the_schemas_the_api_serves() -> None:
    fresh = current()
    stored = json.loads(FIXTURE.read_text())
    assert stored == fresh, (
        f"{FIXTURE} is stale: rewrite it with json.dump(current(), f, indent=1) from this module"
    )
