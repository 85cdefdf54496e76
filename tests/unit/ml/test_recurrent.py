"""The recurrent (ConvGRU) U-Net for time-lapses: each frame's mask sees the other
frames, the ONNX export keeps a fixed window with any image size and equals torch, and
the sequence training loop learns and is repeatable."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from pixelmill.ml.export import check, to_onnx
from pixelmill.ml.networks import RecurrentUNet, UNet
from pixelmill.ml.sequence_training import (
    SequenceSpec,
    predict_sequence,
    train_sequences,
    windows,
)
from pixelmill.ml.spec import InputSpec
from pixelmill.ml.synthetic_timelapse import TimelapseConfig, nuclei_timelapse, timelapse_masks


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_frame_mask_depends_on_its_neighbours_through_the_recurrence():
    torch.manual_seed(0)
    net = RecurrentUNet(depth=2, width=4).eval()
    x = torch.rand(1, 3, 1, 16, 16)
    changed = x.clone()
    changed[0, 0] = 0  # only the first frame changes

    with torch.inference_mode():
        a, b = net(x), net(changed)

    assert a.shape == (1, 3, 1, 16, 16)
    assert not torch.allclose(a[0, 2], b[0, 2])  # the last frame's mask noticed


def test_the_recurrent_unet_is_a_unet_plus_the_recurrence():
    plain = sum(p.numel() for p in UNet(depth=3, width=8).parameters())
    recurrent = sum(p.numel() for p in RecurrentUNet(depth=3, width=8).parameters())
    assert recurrent * 4 < 10 * 2**20  # float32 weights under 10 MB
    assert recurrent > plain


def test_the_onnx_export_has_a_fixed_window_any_size_and_equals_torch():
    import onnxruntime as ort

    torch.manual_seed(1)
    net = RecurrentUNet(depth=2, width=4).eval()
    spec = InputSpec(multiple=4)

    onnx = to_onnx(net, spec, frames=3)

    assert check(onnx, net, spec, frames=3) < 1e-4
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1] == 3
    out = session.run(None, {"input": np.zeros((2, 3, 1, 20, 28), np.float32)})[0]
    assert out.shape == (2, 3, 1, 20, 28)
    assert ((out >= 0) & (out <= 1)).all()  # probabilities


def test_each_frame_is_predicted_from_the_window_centred_on_it():
    assert windows(6, 3) == [(0, 0), (0, 1), (1, 1), (2, 1), (3, 1), (3, 2)]
    assert windows(2, 5) == [(0, 0), (0, 1)]
    frames = np.arange(6, dtype=np.float32)[:, None, None] * np.ones((1, 4, 4), np.float32)

    def which(x):  # the probability of a frame = the index of the frame it came from
        return x

    assert predict_sequence(which, frames, 3)[:, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]


def _data(seed: int, count: int):
    cfg = TimelapseConfig(size=(48, 48), frames=4, count=(3, 5), radius=(5, 8))
    return [
        (f, timelapse_masks(lab))
        for f, lab in (nuclei_timelapse(seed, i, cfg) for i in range(count))
    ]


def test_sequence_training_learns_and_repeats_with_a_seed():
    train, val = _data(0, 6), _data(1, 2)
    spec = SequenceSpec(frames=3, depth=2, width=4, steps=30, batch_size=2, patch=32)

    a = train_sequences(spec, train, val)
    b = train_sequences(spec, train, val)

    assert a.history == b.history and a.history[-1]["step"] == 30
    sa, sb = a.network.state_dict(), b.network.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.metrics["val_dice"] > 0.3  # better than nothing after 30 steps
