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


def _sized_model(sizing: str) -> bytes:
    """An image model that makes a tensor of ones sized by ``sizing``: ``"shape"`` (the
    input's own shape: the size a torch export's Expand to the cell count has) or
    ``"values"`` (a size read from the input's pixels: anything the caller sends)."""
    from onnx import TensorProto, helper

    from tests.security.attacks import _model

    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    if sizing == "shape":
        size = [helper.make_node("Shape", ["input"], ["size"])]
    else:  # four pixel values, as int64, are the shape
        size = [
            helper.make_node("Reshape", ["input", "flat"], ["pixels"]),
            helper.make_node("Slice", ["pixels", "zero", "four"], ["head"]),
            helper.make_node("Cast", ["head"], ["size"], to=TensorProto.INT64),
        ]
    nodes = [
        *size,
        helper.make_node("ConstantOfShape", ["size"], ["ones"], value=one),
        helper.make_node("Mul", ["input", "ones"], ["output"]),
    ]
    consts = [one]
    if sizing == "values":
        consts += [
            helper.make_tensor("flat", TensorProto.INT64, [1], [-1]),
            helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
            helper.make_tensor("four", TensorProto.INT64, [1], [4]),
        ]
    return _model(nodes, consts, ["N", 1, "H", "W"])


def test_a_size_read_from_the_inputs_values_is_refused_one_from_its_shape_is_not() -> None:
    problems = onnx_bounds.size_problems(_sized_model("values"), SEGMENT_1, DEFAULT)
    assert any("set by data" in p for p in problems), problems
    assert onnx_bounds.size_problems(_sized_model("shape"), SEGMENT_1, DEFAULT) == []
