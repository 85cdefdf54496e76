"""Training a time-lapse segmentation network (:class:`~pixelmill.ml.networks.RecurrentUNet`)
on sequences: ``train_sequences(spec, train, val) -> SequenceResult``.

Plain function, no I/O, torch imported inside. Each step takes ``batch_size`` windows of
``frames`` consecutive frames from random sequences, crops the same ``patch`` square from
every frame of a window and flips / rotates the window as one; inputs are normalised per
frame between their 1st and 99.8th percentiles, as serving does. Loss: BCE + soft Dice
per frame. AdamW with cosine decay over ``steps``. Validation: Dice over every frame of
the validation sequences, each frame predicted from the window around it.

``frames=1`` trains the same network one frame at a time (the recurrence then sees a
single frame): the per-frame control for what the temporal context adds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from pixelmill.ml.preprocess import normalize

#: a sequence: frames (T, H, W) any dtype, masks (T, H, W) 0/1
Sequence3D = tuple[NDArray[np.generic], NDArray[np.uint8]]


class SequenceSpec(BaseModel):
    """How to train a :class:`~pixelmill.ml.networks.RecurrentUNet`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frames: int = Field(5, ge=1, le=32, description="frames a window holds (fixed in ONNX)")
    depth: int = Field(3, ge=1, le=5)
    width: int = Field(8, ge=2, le=64)
    steps: int = Field(800, ge=1, le=1_000_000)
    batch_size: int = Field(4, ge=1, le=256, description="windows a step")
    patch: int = Field(96, ge=16, le=1024, description="crop side, px (multiple of 2**depth)")
    lr: float = Field(2e-3, gt=0, le=1)
    weight_decay: float = Field(1e-4, ge=0, le=1)
    seed: int = Field(0, ge=0)
    threads: int = Field(1, ge=1, le=256)


@dataclass
class SequenceResult:
    network: Any  #: the trained RecurrentUNet, eval mode
    spec: SequenceSpec
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def normalised(frames: NDArray[np.generic]) -> NDArray[np.float32]:
    """(T, H, W) frames normalised one by one, as the network sees them."""
    return normalize(np.asarray(frames, np.float32), 1.0, 99.8)


def windows(length: int, frames: int) -> list[tuple[int, int]]:
    """For each frame of a sequence of ``length``: ``(start, position)`` of the window
    of ``frames`` it is predicted from (centred where the sequence allows)."""
    out = []
    for t in range(length):
        start = min(max(t - frames // 2, 0), max(length - frames, 0))
        out.append((start, t - start))
    return out


def train_sequences(
    spec: SequenceSpec,
    train: Sequence[Sequence3D],
    val: Sequence[Sequence3D] = (),
    on_progress: Callable[[dict[str, float]], None] | None = None,
    *,
    report_every: int = 100,
    should_stop: Callable[[], bool] | None = None,
) -> SequenceResult:
    """Train as the module docstring says; ``on_progress`` gets a dict (step, mean loss
    since the last) every ``report_every`` steps and after the last; ``should_stop`` is
    polled every step and raises :class:`~pixelmill.ml.train_result.TrainingCancelled`."""
    import torch

    from pixelmill.ml.networks import RecurrentUNet
    from pixelmill.ml.objectives import loss_of
    from pixelmill.ml.spec import TrainSpec
    from pixelmill.ml.train_result import TrainingCancelled

    if spec.patch % 2**spec.depth:
        raise ValueError(f"patch {spec.patch} must be a multiple of {2**spec.depth}")
    started = time.perf_counter()
    torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    data = [(normalised(f), m.astype(np.float32)) for f, m in train]
    net = RecurrentUNet(1, 1, depth=spec.depth, width=spec.width)
    opt = torch.optim.AdamW(net.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, spec.steps) / spec.steps))
    )
    loss_spec = TrainSpec()
    result = SequenceResult(network=net, spec=spec)
    running, count = 0.0, 0
    for step in range(1, spec.steps + 1):
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"cancelled at step {step}")
        x, y = _batch(rng, data, spec)
        logits = net(torch.from_numpy(x))
        shape = (-1, 1, spec.patch, spec.patch)
        loss = loss_of(logits.reshape(shape), torch.from_numpy(y).reshape(shape), loss_spec)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running, count = running + float(loss.detach()), count + 1
        if step % report_every == 0 or step == spec.steps:
            entry = {"step": step, "loss": round(running / count, 5)}
            running, count = 0.0, 0
            result.history.append(entry)
            if on_progress is not None:
                on_progress(entry)
    net.eval()
    if val:
        result.metrics = {"val_dice": validation_dice(net, val, spec.frames)}
    result.seconds = time.perf_counter() - started
    return result


def _batch(
    rng: np.random.Generator,
    data: list[tuple[NDArray[np.float32], NDArray[np.float32]]],
    spec: SequenceSpec,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(B, T, 1, P, P) inputs and targets: random windows, one crop and one flip /
    rotation for all frames of a window."""
    xs, ys = [], []
    for _ in range(spec.batch_size):
        frames, masks = data[int(rng.integers(len(data)))]
        length, rows, cols = frames.shape
        start = int(rng.integers(0, length - spec.frames + 1))
        r = int(rng.integers(0, rows - spec.patch + 1))
        c = int(rng.integers(0, cols - spec.patch + 1))
        cut = (
            slice(start, start + spec.frames),
            slice(r, r + spec.patch),
            slice(c, c + spec.patch),
        )
        x, y = frames[cut], masks[cut]
        turns = int(rng.integers(4))
        x, y = np.rot90(x, turns, axes=(1, 2)), np.rot90(y, turns, axes=(1, 2))
        if rng.random() < 0.5:
            x, y = x[:, :, ::-1], y[:, :, ::-1]
        if rng.random() < 0.5:  # the same sequence played backwards is a sequence too
            x, y = x[::-1], y[::-1]
        xs.append(x)
        ys.append(y)
    return (
        np.ascontiguousarray(np.stack(xs)[:, :, None], np.float32),
        np.ascontiguousarray(np.stack(ys)[:, :, None], np.float32),
    )


def predict_sequence(
    run: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    frames: NDArray[np.float32],
    window: int,
) -> NDArray[np.float32]:
    """Per-frame probabilities (T, H, W) of normalised ``frames`` (T, H, W, multiples
    of the network's) from ``run``: (1, window, 1, H, W) -> (1, window, 1, H, W)
    probabilities; each frame from the window around it."""
    out = np.zeros(frames.shape, np.float32)
    for t, (start, at) in enumerate(windows(len(frames), window)):
        x = frames[start : start + window][None, :, None]
        out[t] = run(np.ascontiguousarray(x, np.float32))[0, at, 0]
    return out


def validation_dice(net: Any, val: Sequence[Sequence3D], window: int) -> float:
    """Pooled Dice at probability 0.5 over every frame of ``val``."""
    import torch

    def run(x: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            return torch.sigmoid(net(torch.from_numpy(x))).numpy()

    inter = total = 0.0
    for frames, masks in val:
        prob = predict_sequence(run, normalised(frames), window)
        pred, truth = prob > 0.5, masks > 0
        inter += float((pred & truth).sum())
        total += float(pred.sum() + truth.sum())
    return 2 * inter / max(total, 1.0)
