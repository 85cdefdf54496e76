"""The static memory bound of ONNX models (pixelmill.ml.onnx_bounds)."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from pixelmill.errors import InvalidModel
from pixelmill.ml import onnx_bounds
from pixelmill.ml.onnx_bounds import Bounds
from pixelmill.ml.spec import InputSpec
from tests.security import attacks

pytest.importorskip("onnx")
SEGMENT_1 = InputSpec.model_validate({"task": "segmentation", "channels": 1})
DEFAULT = Bounds(1 << 30, 4 << 30, 1024)


def test_the_shipped_model_fits_the_default_bounds_at_its_largest_tile() -> None:
    models = resources.files("pixelmill.ml") / "models"
    data = (models / "nuclei.onnx").read_bytes()
    spec = InputSpec.model_validate(json.loads((models / "nuclei.json").read_text())["input_spec"])
    assert onnx_bounds.size_problems(data, spec, DEFAULT) == []
    # its largest tensor is 128 MiB at 1024 px: a bound of 100 MiB refuses it
    assert onnx_bounds.size_problems(data, spec, Bounds(100 << 20, 4 << 30, 1024))


def test_a_constant_tensor_is_refused_whatever_the_input() -> None:
    with pytest.raises(InvalidModel, match="ConstantOfShape") as refused:
        onnx_bounds.refuse_oversized(attacks.constant_of_shape_model(20_000), SEGMENT_1, DEFAULT)
    assert "1,526 MB" in refused.value.detail


def test_a_small_constant_tensor_passes() -> None:
    assert onnx_bounds.size_problems(attacks.constant_of_shape_model(64), SEGMENT_1, DEFAULT) == []
