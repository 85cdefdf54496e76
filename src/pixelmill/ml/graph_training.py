"""Training a cell-graph classifier: ``fit(examples, ...) -> GraphFit``.

No I/O. Each example is one image's :class:`~pixelmill.ml.graph.CellGraph` and its
per-node class indices (-1 = not annotated: a node, a neighbour, but no loss). A step
takes ``batch_size`` random training graphs as one disconnected graph
(:func:`pixelmill.ml.graph.join`) and minimises cross-entropy over their annotated
nodes; AdamW with cosine decay to 5 %; after each epoch, validation loss, accuracy and
macro F1 over all validation nodes; early stopping on the validation loss and the best
epoch's weights kept. torch is imported inside the functions.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.errors import InvalidParameter
from pixelmill.ml.datasets import Dataset, Item
from pixelmill.ml.graph import CellGraph, build_graph, join
from pixelmill.ml.scores import classification_scores
from pixelmill.ml.spec import InputSpec, TrainSpec
from pixelmill.ml.train_result import TrainingCancelled, TrainResult


@dataclass(frozen=True)
class GraphExample:
    graph: CellGraph
    #: (N,) int64 class index per node, -1 where not annotated
    targets: NDArray[np.int64]


@dataclass(frozen=True)
class GraphFitOptions:
    classes: int
    layers: int = 2
    width: int = 32
    aggregate: bool = True  #: False: the per-cell MLP baseline
    epochs: int = 60
    steps_per_epoch: int | None = None
    batch_size: int = 8
    lr: float = 5e-3
    weight_decay: float = 1e-4
    patience: int = 10
    seed: int = 0
    threads: int = 1


@dataclass
class GraphFit:
    network: Any  #: the trained module, best epoch's weights, eval mode
    metrics: dict[str, float]  #: the best epoch's validation metrics
    history: list[dict[str, Any]]
    best_epoch: int
    stopped_early: bool
    seconds: float
    steps: int
    checkpoint: bytes


def _joined(examples: Sequence[GraphExample]) -> tuple[Any, Any, Any]:
    import torch

    x, e = join([ex.graph for ex in examples])
    y = np.concatenate([ex.targets for ex in examples]) if examples else np.zeros(0, np.int64)
    return torch.from_numpy(x), torch.from_numpy(e), torch.from_numpy(y.astype(np.int64))


def evaluate(net: Any, examples: Sequence[GraphExample], classes: int) -> dict[str, float]:
    """Cross-entropy, accuracy and macro F1 over every annotated node of ``examples``."""
    import torch

    x, e, y = _joined(examples)
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        logits = net(x, e)
    net.train(was_training)
    known = y >= 0
    if not bool(known.any()):
        return {}
    loss = float(torch.nn.functional.cross_entropy(logits[known], y[known]))
    pred = logits.argmax(dim=1)[known].numpy()
    return {"loss": loss, **classification_scores(pred, y[known].numpy(), classes)}


def fit(
    train: Sequence[GraphExample],
    val: Sequence[GraphExample],
    options: GraphFitOptions,
    *,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> GraphFit:
    """Train a :class:`~pixelmill.ml.graph_networks.CellGraphNet` on ``train``.

    ``on_epoch`` gets ``{"epoch", "epochs", "step", "steps", "loss", "metrics",
    "best_epoch", "history", "eta_seconds"}`` after each epoch; ``should_stop`` is
    polled every step and raises :class:`pixelmill.ml.train_result.TrainingCancelled`.
    Without ``val`` the training loss picks the best epoch.
    """
    import torch

    if not train or not any(bool((ex.targets >= 0).any()) for ex in train):
        raise InvalidParameter("no annotated cells to train on")
    started = time.perf_counter()
    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    per_epoch = options.steps_per_epoch or max(1, math.ceil(len(train) / options.batch_size))
    total = per_epoch * options.epochs
    net, opt, sched = _build(len(train[0].graph.feature_names), options, total)
    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, float], dict[str, Any]] | None = None
    step, stopped = 0, False
    for epoch in range(1, options.epochs + 1):
        losses = []
        for _ in range(per_epoch):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"cancelled at epoch {epoch}, step {step}")
            picked = [train[i] for i in rng.integers(0, len(train), size=options.batch_size)]
            loss = _step(net, opt, picked)
            if loss is not None:
                sched.step()
                losses.append(loss)
                step += 1
        train_loss = float(np.mean(losses)) if losses else math.nan
        val_metrics = evaluate(net, val, options.classes) if val else {}
        history.append(
            {"epoch": epoch, "loss": round(train_loss, 6)}
            | {f"val_{k}": round(v, 6) for k, v in val_metrics.items()}
        )
        monitored = val_metrics.get("loss", train_loss)
        if best is None or monitored < best[0] - 1e-5:
            state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            best = (monitored, epoch, val_metrics, state)
        if on_epoch is not None:
            elapsed = time.perf_counter() - started
            eta = round(elapsed / max(step, 1) * (total - step), 1)
            on_epoch(_event(epoch, options.epochs, step, total, history, best[1], eta))
        if epoch - best[1] >= options.patience:
            stopped = True
            break
    assert best is not None
    net.load_state_dict(best[3])
    net.eval()
    metrics = {k: round(float(v), 6) for k, v in best[2].items() if k != "loss"}
    # no validation graphs: the best epoch's training loss, not labelled as validation
    metrics["val_loss" if val else "loss"] = round(float(best[0]), 6)
    return GraphFit(
        network=net,
        metrics=metrics,
        history=history,
        best_epoch=best[1],
        stopped_early=stopped,
        seconds=round(time.perf_counter() - started, 3),
        steps=step,
        checkpoint=_saved(net),
    )


def _event(
    epoch: int,
    epochs: int,
    step: int,
    steps: int,
    history: list[dict[str, Any]],
    best_epoch: int,
    eta: float,
) -> dict[str, Any]:
    """The ``on_epoch`` event: the training's progress and its loss curve so far."""
    last = history[-1]
    return {
        "epoch": epoch,
        "epochs": epochs,
        "step": step,
        "steps": steps,
        "loss": last["loss"],
        "metrics": {k[4:]: v for k, v in last.items() if k.startswith("val_")},
        "best_epoch": best_epoch,
        "history": [dict(h) for h in history],
        "eta_seconds": eta,
    }


def _build(features: int, options: GraphFitOptions, total: int) -> tuple[Any, Any, Any]:
    """The network, AdamW, and its cosine decay to 5 % over ``total`` steps."""
    import torch

    from pixelmill.ml.graph_networks import CellGraphNet

    net = CellGraphNet(
        features,
        options.classes,
        layers=options.layers,
        width=options.width,
        aggregate=options.aggregate,
    )
    opt = torch.optim.AdamW(net.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    )
    net.train()
    return net, opt, sched


def _step(net: Any, opt: Any, picked: Sequence[GraphExample]) -> float | None:
    """One optimiser step on ``picked`` joined; its loss (None: nothing annotated)."""
    import torch

    x, e, y = _joined(picked)
    known = y >= 0
    if not bool(known.any()):
        return None
    loss = torch.nn.functional.cross_entropy(net(x, e)[known], y[known])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def _saved(net: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


def predict(net: Any, graph: CellGraph) -> NDArray[np.float32]:
    """Class probabilities (N, C) of one graph with the torch network (tests, export
    checks); serving runs the exported ONNX model instead."""
    import torch

    from pixelmill.ml.graph import node_inputs

    with torch.inference_mode():
        logits = net(torch.from_numpy(node_inputs(graph)), torch.from_numpy(graph.edges))
    return np.asarray(torch.softmax(logits, dim=1).numpy(), np.float32)


def examples_of(items: Sequence[Item], input_spec: InputSpec) -> list[GraphExample]:
    """The graphs of dataset items (label images + their cells' classes)."""
    out = []
    for it in items:
        if it.labels is None:
            continue
        g = build_graph(
            it.labels,
            it.image,
            max_edge=input_spec.max_edge,
            feature_names=input_spec.features or None,
        )
        table = it.cell_classes if it.cell_classes is not None else np.full(1, -1, np.int64)
        targets = np.where(g.labels < len(table), table[np.minimum(g.labels, len(table) - 1)], -1)
        out.append(GraphExample(g, targets.astype(np.int64)))
    return out


def train_dataset(
    spec: TrainSpec,
    dataset: Dataset,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    on_checkpoint: Callable[[int, bytes], None] | None = None,
) -> TrainResult:
    """Train a graph model on a graph dataset (:mod:`pixelmill.ml.graph_dataset`) as
    ``spec`` says: ``depth`` layers of ``width`` channels, ``arch`` ``gnn`` or ``mlp``
    (no neighbours). Not resumable: a redelivered run starts over (graph training takes
    seconds to minutes). The best checkpoint reaches ``on_checkpoint`` at the end."""
    from pixelmill.ml import drift

    if dataset.task != "graph":
        raise InvalidParameter(f"the dataset is for {dataset.task}, the spec asks for graph")
    train_items = dataset.subset("train") or dataset.items
    first = next((it for it in train_items if it.labels is not None), None)
    if first is None:
        raise InvalidParameter("the dataset has no label images to build graphs from")
    channels = 1 if first.image.ndim == 2 else int(first.image.shape[2])
    probe = build_graph(first.labels, first.image)  # type: ignore[arg-type]
    input_spec = InputSpec(
        task="graph",
        channels={2: 1, 4: 3}.get(channels, channels),
        classes=dataset.classes,
        features=list(probe.feature_names),
        max_edge=spec.max_edge,
    )
    train = examples_of(train_items, input_spec)
    val = examples_of(dataset.subset("val"), input_spec)
    options = GraphFitOptions(
        classes=len(dataset.classes),
        layers=spec.depth,
        width=spec.width,
        aggregate=spec.arch != "mlp",
        epochs=spec.epochs,
        steps_per_epoch=spec.steps_per_epoch,
        batch_size=spec.batch_size,
        lr=spec.lr,
        weight_decay=spec.weight_decay,
        patience=spec.patience,
        seed=spec.seed,
        threads=spec.threads or os.cpu_count() or 1,
    )
    result = fit(train, val, options, on_epoch=on_progress, should_stop=should_stop)
    if on_checkpoint is not None:
        on_checkpoint(result.best_epoch, result.checkpoint)
    return TrainResult(
        network=result.network,
        input_spec=input_spec,
        metrics=result.metrics,
        history=result.history,
        epochs_run=len(result.history),
        stopped_early=result.stopped_early,
        seconds=result.seconds,
        images_seen=result.steps * options.batch_size,
        reference=drift.reference([it.image for it in train_items], input_spec),
        checkpoint=result.checkpoint,
        extra={
            "best_epoch": result.best_epoch,
            "train_items": len(train),
            "val_items": len(val),
            "cells": int(sum(len(ex.targets) for ex in train)),
            "annotated_cells": int(sum(int((ex.targets >= 0).sum()) for ex in train)),
        },
    )
