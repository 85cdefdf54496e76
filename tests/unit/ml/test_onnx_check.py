"""What the ONNX check refuses, on models built with the ``onnx`` package."""

from __future__ import annotations

import pytest

from pixelmill.ml import onnx_check
from tests.security import attacks

onnx = pytest.importorskip("onnx")
helper = onnx.helper


def test_a_plain_model_has_no_problems() -> None:
    assert onnx_check.unsafe_problems(attacks.conv_model(1)) == []


def test_bytes_that_are_not_a_model_are_named_so() -> None:
    assert onnx_check.unsafe_problems(b"\xff\xff\xff not protobuf") == [
        "the bytes are not an ONNX model"
    ]


def test_a_function_defined_in_the_model_may_use_its_own_domain() -> None:
    body = [helper.make_node("Sigmoid", ["x"], ["y"])]
    opsets = [helper.make_opsetid("", attacks.OPSET)]
    function = helper.make_function("local.fn", "Squash", ["x"], ["y"], body, opsets)
    graph = helper.make_graph(
        [helper.make_node("Squash", ["input"], ["output"], domain="local.fn")],
        "g",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["N", 1, "H", "W"])],
    )
    model = helper.make_model(
        graph,
        functions=[function],
        opset_imports=[*opsets, helper.make_opsetid("local.fn", 1)],
        ir_version=attacks.IR_VERSION,
    )
    assert onnx_check.unsafe_problems(model.SerializeToString()) == []


def test_session_options_in_the_model_metadata_are_refused() -> None:
    model = onnx.ModelProto.FromString(attacks.conv_model(1))
    helper.set_model_props(model, {"ort_config": '{"session_options": {}}'})
    assert onnx_check.unsafe_problems(model.SerializeToString()) == [
        "metadata 'ort_config' is not allowed"
    ]


def test_messages_for_clients_carry_no_paths_or_library_text() -> None:
    text = (
        "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : /onnxruntime_src/core/x.cc:12 "
        'External data path does not exist: "/srv/pixelmill/data/pixelmill.yaml"\nmore'
    )
    said = onnx_check.clean(text)
    assert said == "an input has the wrong shape or type (ONNX Runtime status INVALID_ARGUMENT)"
    assert onnx_check.clean("segfault in /usr/lib/x.so") == (
        "ONNX Runtime failed on it (ONNX Runtime status FAIL)"
    )
