"""Serving a time-lapse model: sliding windows give one mask per frame whatever the
sequence's length, and the registry's check refuses a model that does not fit its spec."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from pixelmill.errors import InvalidModel
from pixelmill.ml.sequence_runtime import probabilities
from pixelmill.ml.spec import InputSpec, TrainSpec

SPEC = InputSpec(task="timelapse", frames=3, multiple=4)


def _marking_model(seen: list[tuple[int, ...]]):  # type: ignore[no-untyped-def]
    """A stand-in network that answers each frame of a window with that frame (the
    identity) and records the windows' shapes."""

    def run(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.shape)
        return batch.copy()

    return run


def _frames(length: int, rows: int = 10, cols: int = 13) -> np.ndarray:
    """Frame t is dark but for a bright pixel in column t."""
    out = np.zeros((length, rows, cols), np.float32)
    for t in range(length):
        out[t, 1, t] = 100
    return out


def test_a_sequence_longer_than_the_window_gets_one_mask_per_frame() -> None:
    seen: list[tuple[int, ...]] = []
    frames = _frames(8)
    prob = probabilities(_marking_model(seen), frames, SPEC)
    assert prob.shape == (8, 10, 13)
    # every window is 3 frames, padded to the model's multiple of 4
    assert {s[1:] for s in seen} == {(3, 1, 12, 16)}
    assert sum(s[0] for s in seen) == 8  # one window per frame, batched
    # each frame's answer comes from its own position in its window (not a neighbour's)
    assert [int(np.argmax(p[1])) for p in prob] == list(range(8))


def test_a_sequence_shorter_than_the_window_repeats_its_last_frame() -> None:
    seen: list[tuple[int, ...]] = []
    prob = probabilities(_marking_model(seen), _frames(2), SPEC)
    assert prob.shape == (2, 10, 13) and {s[1] for s in seen} == {3}
    assert [int(np.argmax(p[1])) for p in prob] == [0, 1]


def test_windows_are_batched_under_the_pixel_budget() -> None:
    seen: list[tuple[int, ...]] = []
    probabilities(_marking_model(seen), _frames(5), SPEC, max_batch_pixels=3 * 12 * 16 * 2)
    assert [s[0] for s in seen] == [2, 2, 1]


def test_scale_answers_at_the_frames_own_size() -> None:
    seen: list[tuple[int, ...]] = []
    prob = probabilities(_marking_model(seen), _frames(4, 20, 26), SPEC, scale=0.5)
    assert prob.shape == (4, 20, 26) and {s[3:] for s in seen} == {(12, 16)}


def test_the_train_spec_for_time_lapses() -> None:
    spec = TrainSpec(task="timelapse", patch=64, depth=3)
    assert spec.arch == "runet" and spec.frames == 5
    with pytest.raises(ValidationError, match="multiple of 2\\*\\*depth"):
        TrainSpec(task="timelapse", patch=60, depth=3)
    with pytest.raises(ValidationError, match="at most 5 levels"):
        TrainSpec(task="timelapse", depth=6, patch=64)
    with pytest.raises(ValidationError, match="does not fit task"):
        TrainSpec(task="timelapse", arch="unet")
    with pytest.raises(ValidationError):
        TrainSpec(task="timelapse", frames=0)


def _sigmoid_model(shape: list[object]) -> bytes:
    """A real ONNX model (a sigmoid) taking and giving ``shape``."""
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("Sigmoid", ["input"], ["output"])],
        "g",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def test_the_registry_refuses_a_model_that_does_not_fit_a_time_lapse_spec() -> None:
    from pixelmill.ml.onnx_check import check_fits
    from pixelmill.ml.onnx_model import session

    window = session(_sigmoid_model(["N", 3, 1, "H", "W"]), threads=1)
    check_fits(window, SPEC)  # fits: one mask per frame of a 3-frame window
    with pytest.raises(InvalidModel, match=r"takes 3 frames but input_spec\.frames is 4"):
        check_fits(window, SPEC.model_copy(update={"frames": 4}))
    with pytest.raises(InvalidModel, match=r"needs input_spec\.frames"):
        check_fits(window, SPEC.model_copy(update={"frames": None}))
    plain = session(_sigmoid_model(["N", 1, "H", "W"]), threads=1)
    with pytest.raises(InvalidModel, match="batch, frames, channels, height, width"):
        check_fits(plain, SPEC)
    fixed = session(_sigmoid_model(["N", 3, 1, 64, 64]), threads=1)
    with pytest.raises(InvalidModel, match="fixed height/width"):
        check_fits(fixed, SPEC)
