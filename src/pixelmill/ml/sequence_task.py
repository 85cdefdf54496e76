"""The ``timelapse`` training task: a :class:`~pixelmill.ml.spec.TrainSpec` and a parsed
time-lapse :class:`~pixelmill.ml.datasets.Dataset` in, a
:class:`~pixelmill.ml.train_result.TrainResult` out, through
:func:`pixelmill.ml.sequence_training.train_sequences`.

Plain function, no I/O, torch imported inside. The spec maps onto the sequence loop:
``frames`` (the window), ``depth``, ``width``, ``patch``, ``batch_size`` (windows a
step), ``lr``, ``weight_decay``, ``seed``, ``threads``; ``epochs`` x ``steps_per_epoch``
steps in all (default steps per epoch: one window from each training sequence). Progress
is reported once an epoch. Validation Dice over every frame of the validation sequences
(each frame predicted from the window around it, as served) is measured once, after the
last step: no early stopping, and the last weights are the model. Not resumable: a
redelivered job starts over (minutes for the sizes it is meant for).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.errors import InvalidParameter
from pixelmill.ml.datasets import Dataset, Item
from pixelmill.ml.spec import InputSpec, TrainSpec
from pixelmill.ml.train_result import TrainResult


def grey(frames: NDArray[Any]) -> NDArray[Any]:
    """(T, H, W) frames: colour frames (T, H, W, S) averaged over their first 3 bands."""
    if frames.ndim == 4:
        return np.asarray(frames[..., :3].mean(axis=3, dtype=np.float32))
    return frames


def input_spec(spec: TrainSpec) -> InputSpec:
    """What a trained time-lapse model expects, shipped with it."""
    return InputSpec(
        task="timelapse",
        channels=1,
        tile=max(spec.patch, 256),
        multiple=2**spec.depth,
        frames=spec.frames,
        grow=spec.grow,
        min_object_fraction=spec.min_object_fraction,
        fill_holes=spec.fill_holes,
    )


def fit_problems(spec: TrainSpec, frames: list[int], shapes: list[list[int]]) -> list[str]:
    """Why sequences of these frame counts and (H, W) sizes cannot train with ``spec``."""
    out = []
    if frames and min(frames) < spec.frames:
        out.append(
            f"a window holds {spec.frames} frames (spec.frames) but a sequence has only "
            f"{min(frames)}"
        )
    if shapes and min(min(s[:2]) for s in shapes) < spec.patch:
        side = min(min(s[:2]) for s in shapes)
        out.append(f"training crops are {spec.patch} px (spec.patch) but a frame side is {side}")
    return out


def _sequences(items: list[Item]) -> list[tuple[NDArray[Any], NDArray[np.uint8]]]:
    return [(grey(i.image), (np.asarray(i.mask) > 0).astype(np.uint8)) for i in items]


def _reporter(
    spec: TrainSpec,
    steps: int,
    per_epoch: int,
    history: list[dict[str, Any]],
    started: float,
    on_progress: Callable[[dict[str, Any]], None] | None,
) -> Callable[[dict[str, float]], None]:
    """The sequence loop's report after each epoch as the trainer's progress event
    (the history grows by one entry each time)."""

    def progress(entry: dict[str, float]) -> None:
        epoch = math.ceil(entry["step"] / per_epoch)
        history.append({"epoch": epoch, "loss": entry["loss"]})
        elapsed = time.perf_counter() - started
        if on_progress is None:
            return
        on_progress(
            {
                "epoch": epoch,
                "epochs": spec.epochs,
                "step": int(entry["step"]),
                "steps": steps,
                "loss": entry["loss"],
                "metrics": {},
                "best_epoch": epoch,
                "history": [dict(h) for h in history],
                "images_per_second": round(
                    entry["step"] * spec.batch_size * spec.frames / max(elapsed, 1e-9), 3
                ),
                "eta_seconds": round(elapsed / entry["step"] * (steps - entry["step"]), 1),
            }
        )

    return progress


def train_dataset(
    spec: TrainSpec,
    dataset: Dataset,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    on_checkpoint: Callable[[int, bytes], None] | None = None,
) -> TrainResult:
    """Train a :class:`~pixelmill.ml.networks.RecurrentUNet` as the module docstring says."""
    import torch

    from pixelmill.ml import drift
    from pixelmill.ml.sequence_training import SequenceSpec, train_sequences

    started = time.perf_counter()
    train_items = dataset.subset("train") or dataset.items
    val_items = dataset.subset("val")
    problems = fit_problems(
        spec,
        [int(i.image.shape[0]) for i in dataset.items],
        [list(i.image.shape[1:3]) for i in dataset.items],
    )
    if problems:
        raise InvalidParameter("the spec does not fit the dataset: " + "; ".join(problems))
    per_epoch = spec.steps_per_epoch or max(1, math.ceil(len(train_items) / spec.batch_size))
    seq_spec = SequenceSpec(
        frames=spec.frames,
        depth=spec.depth,
        width=spec.width,
        steps=per_epoch * spec.epochs,
        batch_size=spec.batch_size,
        patch=spec.patch,
        lr=spec.lr,
        weight_decay=spec.weight_decay,
        seed=spec.seed,
        threads=spec.threads or 1,
    )
    history: list[dict[str, Any]] = []
    progress = _reporter(spec, seq_spec.steps, per_epoch, history, started, on_progress)

    result = train_sequences(
        seq_spec,
        _sequences(train_items),
        _sequences(val_items),
        progress,
        report_every=per_epoch,
        should_stop=should_stop,
    )
    state = io.BytesIO()
    torch.save(result.network.state_dict(), state)
    if on_checkpoint is not None:
        on_checkpoint(spec.epochs, state.getvalue())
    shipped = input_spec(spec)
    metrics = dict(result.metrics) or {"loss": history[-1]["loss"]}
    frames = [frame for i in train_items for frame in grey(i.image)[:: max(1, spec.frames)]]
    return TrainResult(
        network=result.network,
        input_spec=shipped,
        metrics={k: round(float(v), 6) for k, v in metrics.items()},
        history=history,
        epochs_run=spec.epochs,
        stopped_early=False,
        seconds=round(time.perf_counter() - started, 3),
        images_seen=seq_spec.steps * spec.batch_size * spec.frames,
        reference=drift.reference(frames, shipped),
        checkpoint=state.getvalue(),
        extra={
            "window_frames": spec.frames,
            "steps": seq_spec.steps,
            "train_items": len(train_items),
            "val_items": len(val_items),
        },
    )
