"""The training loop: ``train(spec, dataset, on_progress, should_stop) -> TrainResult``.

Plain function, no I/O: the trainer service hands it a parsed
:class:`~pixelmill.ml.datasets.Dataset` and callbacks, and stores what it returns.
torch is imported inside the functions, so importing this module stays cheap.

Segmentation: random ``patch``-sized crops, flips / 90° rotations / intensity jitter /
optional elastic deformation, loss = BCE + ``dice_weight`` x soft Dice, validation
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
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from pixelmill.errors import Conflict, InvalidParameter
from pixelmill.ml import drift
from pixelmill.ml.datasets import Dataset, Item
from pixelmill.ml.preprocess import normalize, pad_to_multiple, resize_planes, to_planes
from pixelmill.ml.scores import classification_scores
from pixelmill.ml.spec import InputSpec, TrainSpec

Progress = Callable[[dict[str, Any]], None]


class TrainingCancelled(Conflict):
    """Raised from :func:`train` when ``should_stop()`` turned true."""

    slug = "cancelled"
    title = "Training was cancelled"


@dataclass
class TrainResult:
    network: Any  #: the trained torch module (best checkpoint, eval mode)
    input_spec: InputSpec
    metrics: dict[str, float]  #: validation metrics of the best epoch
    history: list[dict[str, Any]]
    epochs_run: int
    stopped_early: bool
    seconds: float
    images_seen: int
    reference: dict[str, Any]  #: drift reference of the training inputs
    checkpoint: bytes = b""  #: ``torch.save`` of the best state dict
    extra: dict[str, Any] = field(default_factory=dict)


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


def _crop(
    rng: np.random.Generator, x: NDArray[np.float32], y: NDArray[np.float32], size: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    _, rows, cols = x.shape
    if rows < size or cols < size:
        pr, pc = max(0, size - rows), max(0, size - cols)
        mode: Literal["reflect", "edge"] = "reflect" if pr < rows and pc < cols else "edge"
        x = np.pad(x, ((0, 0), (0, pr), (0, pc)), mode=mode)
        y = np.pad(y, ((0, 0), (0, pr), (0, pc)), mode=mode)
        rows, cols = x.shape[1:]
    r = int(rng.integers(0, rows - size + 1))
    c = int(rng.integers(0, cols - size + 1))
    return x[:, r : r + size, c : c + size], y[:, r : r + size, c : c + size]


def _elastic(
    rng: np.random.Generator,
    arrays: list[NDArray[np.float32]],
    alpha: float = 8.0,
    sigma: float = 6.0,
) -> list[NDArray[np.float32]]:
    from scipy import ndimage

    _, rows, cols = arrays[0].shape
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, (rows, cols)), sigma) * alpha
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, (rows, cols)), sigma) * alpha
    yy, xx = np.mgrid[0:rows, 0:cols]
    coords = [yy + dy, xx + dx]
    out = []
    for k, arr in enumerate(arrays):
        order = 1 if k == 0 else 0
        out.append(
            np.stack(
                [ndimage.map_coordinates(p, coords, order=order, mode="reflect") for p in arr]
            ).astype(np.float32)
        )
    return out


def augment(
    rng: np.random.Generator, x: NDArray[np.float32], y: NDArray[np.float32] | None, spec: TrainSpec
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
    """Random flips, 90° rotations, intensity jitter and (optionally) elastic warps.
    Geometric changes apply to image and mask alike; intensity ones to the image only."""
    if spec.augment_flips:
        if rng.random() < 0.5:
            x, y = x[:, ::-1], None if y is None else y[:, ::-1]
        if rng.random() < 0.5:
            x, y = x[:, :, ::-1], None if y is None else y[:, :, ::-1]
    if spec.augment_rot90:
        k = int(rng.integers(0, 4))
        x, y = np.rot90(x, k, (1, 2)), None if y is None else np.rot90(y, k, (1, 2))
    if spec.augment_elastic and y is not None and rng.random() < 0.5:
        x, y = _elastic(rng, [np.ascontiguousarray(x), np.ascontiguousarray(y)])
        y = (y > 0.5).astype(np.float32)
    if spec.augment_intensity:
        gamma = float(np.exp(rng.normal(0, 0.25)))
        jittered = np.clip(x, 0, None) ** gamma * rng.uniform(0.7, 1.3) + rng.normal(0, 0.05)
        if rng.random() < 0.3:
            jittered = jittered + rng.normal(0, rng.uniform(0.01, 0.08), x.shape)
        x = jittered.astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32), None if y is None else np.ascontiguousarray(y)


def build_network(spec: TrainSpec, input_spec: InputSpec) -> Any:
    from pixelmill.ml.networks import SmallCNN, UNet

    if spec.task == "segmentation":
        return UNet(input_spec.channels, 1, depth=spec.depth, width=spec.width)
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
    validation metrics and ``eta_seconds``; ``should_stop`` is polled every step and
    raises :class:`TrainingCancelled` when true; ``on_checkpoint(epoch, bytes)``
    receives the best state dict whenever it improves; ``on_epoch(bytes)`` the resumable
    state after each epoch, which ``resume`` takes back (ignored, and training starts
    over, when it was saved for another spec or dataset).
    """
    import torch

    if dataset.task != spec.task:
        raise InvalidParameter(f"the dataset is for {dataset.task}, the spec asks for {spec.task}")
    started = time.perf_counter()
    torch.set_num_threads(spec.threads or os.cpu_count() or 1)
    torch.manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    train_items = dataset.subset("train") or dataset.items
    val_items = dataset.subset("val")
    input_spec = InputSpec(
        task=spec.task,
        channels=_channels(dataset.items),
        tile=max(spec.patch, 256) if spec.task == "segmentation" else spec.image_size,
        multiple=2**spec.depth,
        classes=dataset.classes,
        size=spec.image_size if spec.task == "classification" else None,
        grow=spec.grow if spec.task == "segmentation" else 0,
        min_object_fraction=spec.min_object_fraction if spec.task == "segmentation" else 0.0,
        fill_holes=spec.fill_holes and spec.task == "segmentation",
    )
    xs = [prepare(i, input_spec) for i in train_items]
    ys: list[Any] = (
        [(i.mask[None] > 0).astype(np.float32) for i in train_items if i.mask is not None]
        if spec.task == "segmentation"
        else [int(i.label or 0) for i in train_items]
    )
    vx = [prepare(i, input_spec) for i in val_items]
    vy: list[Any] = (
        [(i.mask[None] > 0).astype(np.float32) for i in val_items if i.mask is not None]
        if spec.task == "segmentation"
        else [int(i.label or 0) for i in val_items]
    )
    net = build_network(spec, input_spec)
    memory = torch.channels_last if spec.channels_last else torch.contiguous_format
    net = net.to(memory_format=memory)
    steps_per_epoch = spec.steps_per_epoch or max(1, math.ceil(len(xs) / spec.batch_size))
    total_steps = steps_per_epoch * spec.epochs
    opt = torch.optim.AdamW(net.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)),
    )
    history: list[dict[str, Any]] = []
    best_loss, best_state, best_metrics, best_epoch = math.inf, None, {}, 0
    seen, step, stopped_early, first_epoch = 0, 0, False, 1
    train_started = time.perf_counter()
    restored = _restore(resume, spec, dataset) if resume else None
    if restored is not None:
        net.load_state_dict(restored["net"])
        opt.load_state_dict(restored["opt"])
        sched.load_state_dict(restored["sched"])
        rng.bit_generator.state = restored["rng"]
        torch.set_rng_state(restored["torch_rng"])
        history = list(restored["history"])
        best_loss, best_epoch = float(restored["best_loss"]), int(restored["best_epoch"])
        best_state, best_metrics = restored["best_state"], dict(restored["best_metrics"])
        seen, step = int(restored["seen"]), int(restored["step"])
        first_epoch = int(restored["epoch"]) + 1
        train_started -= float(restored["train_seconds"])
        if first_epoch - 1 - best_epoch >= spec.patience:
            first_epoch = spec.epochs + 1  # it had already stopped early
            stopped_early = True
    for epoch in range(first_epoch, spec.epochs + 1):
        net.train()
        losses = []
        for _ in range(steps_per_epoch):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"cancelled at epoch {epoch}, step {step}")
            batch_x, batch_y = _batch(rng, xs, ys, spec)
            bx = torch.from_numpy(batch_x).contiguous(memory_format=memory)
            by = (
                torch.from_numpy(batch_y)
                if spec.task == "segmentation"
                else torch.from_numpy(batch_y).long()
            )
            loss = _loss(net(bx), by, spec)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            seen += len(batch_x)
        val = _validate(net, vx, vy, spec, input_spec, memory) if vx else {}
        train_loss = float(np.mean(losses))
        monitored = val.get("loss", train_loss)
        elapsed = time.perf_counter() - train_started
        entry = {
            "epoch": epoch,
            "loss": round(train_loss, 6),
            **{f"val_{k}": round(v, 6) for k, v in val.items()},
        }
        history.append(entry)
        if monitored < best_loss - 1e-5:
            best_loss, best_epoch, best_metrics = monitored, epoch, val
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            if on_checkpoint is not None:
                on_checkpoint(epoch, _save(best_state))
        if on_progress is not None:
            on_progress(
                {
                    "epoch": epoch,
                    "epochs": spec.epochs,
                    "step": step,
                    "steps": total_steps,
                    "loss": entry["loss"],
                    "metrics": {k: round(v, 6) for k, v in val.items()},
                    "best_epoch": best_epoch,
                    "images_per_second": round(seen / max(elapsed, 1e-9), 3),
                    "eta_seconds": round(elapsed / step * (total_steps - step), 1),
                }
            )
        if on_epoch is not None:
            on_epoch(
                _save(
                    {
                        "format": _RESUME_FORMAT,
                        "key": _resume_key(spec, dataset),
                        "epoch": epoch,
                        "step": step,
                        "seen": seen,
                        "train_seconds": time.perf_counter() - train_started,
                        "net": net.state_dict(),
                        "opt": opt.state_dict(),
                        "sched": sched.state_dict(),
                        "rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(),
                        "history": history,
                        "best_loss": best_loss,
                        "best_epoch": best_epoch,
                        "best_state": best_state,
                        "best_metrics": best_metrics,
                    }
                )
            )
        if epoch - best_epoch >= spec.patience:
            stopped_early = True
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    metrics = dict(best_metrics) or {"loss": history[-1]["loss"]}
    metrics.pop("loss", None)
    metrics["val_loss"] = best_loss
    return TrainResult(
        network=net,
        input_spec=input_spec,
        metrics={k: round(float(v), 6) for k, v in metrics.items()},
        history=history,
        epochs_run=len(history),
        stopped_early=stopped_early,
        seconds=round(time.perf_counter() - started, 3),
        images_seen=seen,
        reference=drift.reference([i.image for i in train_items]),
        checkpoint=_save(net.state_dict()),
        extra={"best_epoch": best_epoch, "train_items": len(xs), "val_items": len(vx)},
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


def _batch(
    rng: np.random.Generator, xs: list[NDArray[np.float32]], ys: list[Any], spec: TrainSpec
) -> tuple[NDArray[np.float32], NDArray[Any]]:
    idx = rng.integers(0, len(xs), size=spec.batch_size)
    bx: list[NDArray[np.float32]] = []
    by: list[Any] = []
    for i in idx:
        if spec.task == "segmentation":
            x, y = _crop(rng, xs[i], ys[i], spec.patch)
            x, y_aug = augment(rng, x, y, spec)
            by.append(y_aug)
        else:
            x, _ = augment(rng, xs[i], None, spec)
            by.append(ys[i])
        bx.append(x)
    return np.stack(bx), np.stack(by) if spec.task == "segmentation" else np.asarray(
        by, dtype=np.int64
    )


def _loss(logits: Any, target: Any, spec: TrainSpec) -> Any:
    import torch.nn.functional as F

    if spec.task == "classification":
        return F.cross_entropy(logits, target)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    if spec.dice_weight == 0:
        return bce
    prob = logits.sigmoid()
    inter = (prob * target).sum(dim=(1, 2, 3))
    dice = (2 * inter + 1) / (prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) + 1)
    return bce + spec.dice_weight * (1 - dice.mean())


def _validate(
    net: Any,
    vx: list[NDArray[np.float32]],
    vy: list[Any],
    spec: TrainSpec,
    input_spec: InputSpec,
    memory: Any,
) -> dict[str, float]:
    import torch

    net.eval()
    losses, inter, total, union, correct, pixels = [], 0.0, 0.0, 0.0, 0.0, 0.0
    preds: list[int] = []
    with torch.inference_mode():
        for x, y in zip(vx, vy, strict=True):
            if spec.task == "segmentation":
                padded, (rows, cols) = pad_to_multiple(x, input_spec.multiple)
                logits = net(torch.from_numpy(padded[None]).contiguous(memory_format=memory))
                logits = logits[..., :rows, :cols].contiguous()
                target = torch.from_numpy(y[None])
                losses.append(float(_loss(logits, target, spec)))
                p = (logits > 0).numpy()[0, 0]
                t = y[0] > 0.5
                inter += float(np.logical_and(p, t).sum())
                total += float(p.sum() + t.sum())
                union += float(np.logical_or(p, t).sum())
                correct += float((p == t).sum())
                pixels += p.size
            else:
                logits = net(torch.from_numpy(x[None]).contiguous(memory_format=memory))
                losses.append(float(_loss(logits, torch.tensor([y]), spec)))
                preds.append(int(logits.argmax(dim=1)[0]))
    net.train()
    out = {"loss": float(np.mean(losses))}
    if spec.task == "segmentation":
        out.update(
            dice=1.0 if total == 0 else 2 * inter / total,
            iou=1.0 if union == 0 else inter / union,
            pixel_accuracy=correct / max(pixels, 1),
        )
    else:
        out.update(classification_scores(np.array(preds), np.array(vy), len(input_spec.classes)))
    return out
