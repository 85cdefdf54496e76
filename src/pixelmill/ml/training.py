"""The training loop: ``train(spec, dataset, on_progress, should_stop) -> TrainResult``.

Plain function, no I/O: the trainer service hands it a parsed
:class:`~pixelmill.ml.datasets.Dataset` and callbacks, and stores what it returns.
torch is imported inside the functions, so importing this module stays cheap.

Segmentation: random ``patch``-sized crops, flips / 90° rotations / intensity jitter /
optional elastic deformation (:mod:`pixelmill.ml.augment`), loss = BCE + ``dice_weight`` x soft Dice, validation
Dice / IoU / pixel accuracy on the whole validation images. Classification: images
resized to ``image_size``, cross-entropy, accuracy / macro F1. Both: AdamW with cosine
decay, early stopping on validation loss, best-checkpoint kept, channels-last on CPU.

Resumable: ``on_epoch`` receives, after every epoch, the whole training state (weights,
optimizer, schedule, random generators, history, best so far) as bytes; handing them back
as ``resume`` continues with the next epoch, and the run ends as if never interrupted.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.errors import InvalidParameter
from pixelmill.ml import drift
from pixelmill.ml.augment import batch
from pixelmill.ml.datasets import Dataset, Item
from pixelmill.ml.objectives import loss_of, validate
from pixelmill.ml.preprocess import normalize, resize_planes, to_planes
from pixelmill.ml.spec import InputSpec, TrainSpec
from pixelmill.ml.train_result import TrainingCancelled, TrainResult

__all__ = ["TrainResult", "TrainingCancelled", "prepare", "train"]

Progress = Callable[[dict[str, Any]], None]


def _channels(items: list[Item]) -> int:
    counts = [1 if i.image.ndim == 2 else int(i.image.shape[2]) for i in items]
    majority = max(set(counts), key=counts.count)
    return {2: 1, 4: 3}.get(majority, majority)


def prepare(item: Item, spec: InputSpec) -> NDArray[np.float32]:
    """An item's image as the normalised (C, H, W) float32 the network sees."""
    planes = normalize(to_planes(item.image, spec.channels), spec.p_low, spec.p_high)
    if spec.task == "classification" and spec.size:
        planes = resize_planes(planes, spec.size)
    return planes


def build_network(spec: TrainSpec, input_spec: InputSpec) -> Any:
    from pixelmill.ml.networks import SmallCNN, UNet

    if spec.task == "segmentation":
        outputs = 2 if spec.head == "distance" else 1
        return UNet(input_spec.channels, outputs, depth=spec.depth, width=spec.width)
    return SmallCNN(
        input_spec.channels, len(input_spec.classes), depth=spec.depth, width=spec.width
    )


def train(
    spec: TrainSpec,
    dataset: Dataset,
    on_progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    on_checkpoint: Callable[[int, bytes], None] | None = None,
    on_epoch: Callable[[bytes], None] | None = None,
    resume: bytes | None = None,
) -> TrainResult:
    """Train a network on ``dataset`` as ``spec`` says; see the module docstring.

    ``on_progress`` receives dicts with ``epoch``, ``epochs``, ``step``, ``loss``,
    validation metrics, ``history`` (one entry per epoch so far: the loss curve) and
    ``eta_seconds``; ``should_stop`` is polled every step and
    raises :class:`TrainingCancelled` when true; ``on_checkpoint(epoch, bytes)``
    receives the best state dict whenever it improves; ``on_epoch(bytes)`` the resumable
    state after each epoch, which ``resume`` takes back (ignored, and training starts
    over, when it was saved for another spec or dataset).
    """
    import torch

    if dataset.task != spec.task:
        raise InvalidParameter(f"the dataset is for {dataset.task}, the spec asks for {spec.task}")
    if spec.task == "graph":  # seconds to minutes: not resumable, a redelivery starts over
        from pixelmill.ml.graph_training import train_dataset

        return train_dataset(spec, dataset, on_progress, should_stop, on_checkpoint=on_checkpoint)
    if spec.task == "timelapse":  # likewise not resumable
        from pixelmill.ml import sequence_task

        return sequence_task.train_dataset(
            spec, dataset, on_progress, should_stop, on_checkpoint=on_checkpoint
        )
    started = time.perf_counter()
    torch.set_num_threads(spec.threads or os.cpu_count() or 1)
    torch.manual_seed(spec.seed)
    train_items = dataset.subset("train") or dataset.items
    input_spec = _input_spec(spec, dataset)
    loop = _Loop(spec, input_spec, train_items, dataset.subset("val"))
    restored = _restore(resume, spec, dataset) if resume else None
    if restored is not None:
        loop.restore(restored)
    for epoch in range(loop.next_epoch, spec.epochs + 1):
        train_loss = loop.run_epoch(epoch, should_stop)
        val = validate(loop.net, loop.vx, loop.vy, spec, input_spec, loop.memory) if loop.vx else {}
        entry = {
            "epoch": epoch,
            "loss": round(train_loss, 6),
            **{f"val_{k}": round(v, 6) for k, v in val.items()},
        }
        loop.history.append(entry)
        monitored = val.get("loss", train_loss)
        if monitored < loop.best_loss - 1e-5:
            best = loop.keep_best(epoch, monitored, val)
            if on_checkpoint is not None:
                on_checkpoint(epoch, _save(best))
        if on_progress is not None:
            on_progress(loop.progress(epoch, entry["loss"], val))
        if on_epoch is not None:
            on_epoch(_save(loop.resumable(epoch, _resume_key(spec, dataset))))
        if epoch - loop.best_epoch >= spec.patience:
            loop.stopped_early = True
            break
    return loop.result(started, drift.reference([i.image for i in train_items], input_spec))


def _input_spec(spec: TrainSpec, dataset: Dataset) -> InputSpec:
    """What the trained model expects, shipped with it: channels (the dataset's
    majority), tile and padding multiple, classes, and the post-processing settings."""
    seg = spec.task == "segmentation"
    return InputSpec(
        task=spec.task,
        channels=_channels(dataset.items),
        tile=max(spec.patch, 256) if seg else spec.image_size,
        multiple=2**spec.depth,
        classes=dataset.classes,
        size=spec.image_size if spec.task == "classification" else None,
        grow=spec.grow if seg else 0,
        min_object_fraction=spec.min_object_fraction if seg else 0.0,
        fill_holes=spec.fill_holes and seg,
        head=spec.head if seg else "mask",
        seed_threshold=spec.seed_threshold,
        distance_cap=spec.distance_cap,
    )


def _examples(
    items: list[Item], input_spec: InputSpec
) -> tuple[list[NDArray[np.float32]], list[Any]]:
    """Network inputs and targets: (1, H, W) float32 0/1 masks, (2, H, W) foreground and
    distance (distance head, :func:`pixelmill.ml.instance_head.targets`) or class indices."""
    xs = [prepare(i, input_spec) for i in items]
    if input_spec.task == "segmentation" and input_spec.head == "distance":
        from pixelmill.ml.instance_head import targets
        from pixelmill.ml.scores import truth_instances

        return xs, [
            targets(
                i.labels if i.labels is not None else truth_instances(i.mask),
                input_spec.distance_cap,
            )
            for i in items
            if i.mask is not None
        ]
    if input_spec.task == "segmentation":
        return xs, [(i.mask[None] > 0).astype(np.float32) for i in items if i.mask is not None]
    return xs, [int(i.label or 0) for i in items]


class _Loop:
    """One training run's moving parts (network, AdamW with cosine decay, random
    generators) and its record (history, best epoch so far, steps and images seen), which
    is what a resumable state holds."""

    def __init__(
        self, spec: TrainSpec, input_spec: InputSpec, train: list[Item], val: list[Item]
    ) -> None:
        import torch

        self.spec, self.input_spec = spec, input_spec
        self.rng = np.random.default_rng(spec.seed)
        self.xs, self.ys = _examples(train, input_spec)
        self.vx, self.vy = _examples(val, input_spec)
        self.memory = torch.channels_last if spec.channels_last else torch.contiguous_format
        self.net = build_network(spec, input_spec).to(memory_format=self.memory)
        self.steps_per_epoch = spec.steps_per_epoch or max(
            1, math.ceil(len(self.xs) / spec.batch_size)
        )
        total = self.total_steps = self.steps_per_epoch * spec.epochs
        self.opt = torch.optim.AdamW(
            self.net.parameters(), lr=spec.lr, weight_decay=spec.weight_decay
        )
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt,
            lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)),
        )
        self.history: list[dict[str, Any]] = []
        self.best_loss, self.best_epoch = math.inf, 0
        self.best_state: dict[str, Any] | None = None
        self.best_metrics: dict[str, float] = {}
        self.seen, self.step, self.stopped_early, self.next_epoch = 0, 0, False, 1
        self.started = time.perf_counter()

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a resumable state (see :meth:`resumable`)."""
        import torch

        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.history = list(state["history"])
        self.best_loss, self.best_epoch = float(state["best_loss"]), int(state["best_epoch"])
        self.best_state, self.best_metrics = state["best_state"], dict(state["best_metrics"])
        self.seen, self.step = int(state["seen"]), int(state["step"])
        self.next_epoch = int(state["epoch"]) + 1
        self.started -= float(state["train_seconds"])
        if self.next_epoch - 1 - self.best_epoch >= self.spec.patience:
            self.next_epoch = self.spec.epochs + 1  # it had already stopped early
            self.stopped_early = True

    def run_epoch(self, epoch: int, should_stop: Callable[[], bool] | None) -> float:
        """One epoch of optimiser steps; the mean training loss."""
        import torch

        spec = self.spec
        self.net.train()
        losses = []
        for _ in range(self.steps_per_epoch):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"cancelled at epoch {epoch}, step {self.step}")
            batch_x, batch_y = batch(self.rng, self.xs, self.ys, spec)
            bx = torch.from_numpy(batch_x).contiguous(memory_format=self.memory)
            by = torch.from_numpy(batch_y)
            loss = loss_of(self.net(bx), by if spec.task == "segmentation" else by.long(), spec)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            losses.append(float(loss.detach()))
            self.step += 1
            self.seen += len(batch_x)
        return float(np.mean(losses))

    def keep_best(self, epoch: int, loss: float, val: dict[str, float]) -> dict[str, Any]:
        """Remember this epoch as the best so far; its weights (a copy) are returned."""
        self.best_loss, self.best_epoch, self.best_metrics = loss, epoch, val
        self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        return self.best_state

    def progress(self, epoch: int, loss: float, val: dict[str, float]) -> dict[str, Any]:
        """The ``on_progress`` event after ``epoch`` (rates per second of training)."""
        elapsed = time.perf_counter() - self.started
        return {
            "epoch": epoch,
            "epochs": self.spec.epochs,
            "step": self.step,
            "steps": self.total_steps,
            "loss": loss,
            "metrics": {k: round(v, 6) for k, v in val.items()},
            "best_epoch": self.best_epoch,
            "history": [dict(h) for h in self.history],
            "images_per_second": round(self.seen / max(elapsed, 1e-9), 3),
            "eta_seconds": round(elapsed / self.step * (self.total_steps - self.step), 1),
        }

    def resumable(self, epoch: int, key: str) -> dict[str, Any]:
        """Everything :meth:`restore` needs to continue after ``epoch``."""
        import torch

        return {
            "format": _RESUME_FORMAT,
            "key": key,
            "epoch": epoch,
            "step": self.step,
            "seen": self.seen,
            "train_seconds": time.perf_counter() - self.started,
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "best_metrics": self.best_metrics,
        }

    def result(self, started: float, reference: dict[str, Any]) -> TrainResult:
        """The best checkpoint, in eval mode, with its validation metrics."""
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)
        self.net.eval()
        metrics = dict(self.best_metrics)
        metrics.pop("loss", None)
        # without a validation split the best epoch was picked on the training loss: it
        # is reported as that (``loss``), never labelled as a validation score
        metrics["val_loss" if self.vx else "loss"] = self.best_loss
        return TrainResult(
            network=self.net,
            input_spec=self.input_spec,
            metrics={k: round(float(v), 6) for k, v in metrics.items()},
            history=self.history,
            epochs_run=len(self.history),
            stopped_early=self.stopped_early,
            seconds=round(time.perf_counter() - started, 3),
            images_seen=self.seen,
            reference=reference,
            checkpoint=_save(self.net.state_dict()),
            extra={
                "best_epoch": self.best_epoch,
                "train_items": len(self.xs),
                "val_items": len(self.vx),
            },
        )


_RESUME_FORMAT = 1


def _resume_key(spec: TrainSpec, dataset: Dataset) -> str:
    """What a resumable state must have been saved for: the spec (less the thread count,
    which may differ on the machine that resumes) and the dataset."""
    return f"{spec.model_dump_json(exclude={'threads'})}|{dataset.sha256}"


def _restore(data: bytes, spec: TrainSpec, dataset: Dataset) -> dict[str, Any] | None:
    import torch

    try:  # weights_only: tensors and plain Python values only, no arbitrary pickles
        state = torch.load(io.BytesIO(data), weights_only=True)
    except Exception:  # a damaged state means starting over, not failing
        return None
    if not isinstance(state, dict) or state.get("format") != _RESUME_FORMAT:
        return None
    return state if state.get("key") == _resume_key(spec, dataset) else None


def _save(state: dict[str, Any]) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()
