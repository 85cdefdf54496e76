"""Cell-graph classification: a graph network against a per-cell classifier on the same
node features, on synthetic tissue (tumour nests in stroma) where a cell's own look
tells its class only weakly.

    .venv/bin/python benchmarks/ml_graph.py            # 48 train + 12 val images, 40 test
    .venv/bin/python benchmarks/ml_graph.py --quick    # 12 + 4 images, 8 test: ~30 s
    .venv/bin/python benchmarks/ml_graph.py --card tissue.json --onnx tissue.onnx
                     # also scores a model `pixelmill train --task graph` wrote, on ONNX
                     # Runtime as serving runs it

Train and validation images come from generator seed 0 (validation picks the best epoch
and stops early); the test images from seed 1, never seen in training or tuning. Both
models are ``CellGraphNet`` with the same depth, width, optimiser and epochs; the
baseline has no neighbour aggregation (a per-cell MLP). One torch thread. Besides
accuracy and macro F1 on the test cells, each model's predictions are turned into the
graph measurements a user gets (per-study neighbourhood composition), compared with the
same measurements from the true classes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from _harness import parse, parser, save, table

from pixelmill.ml import graph_measures
from pixelmill.ml.graph import build_graph
from pixelmill.ml.graph_training import GraphExample, GraphFitOptions, evaluate, fit, predict
from pixelmill.ml.synthetic_tissue import CLASSES, tissue_sample


def examples(seed: int, start: int, count: int) -> list[GraphExample]:
    """Graphs of ``count`` generated images with their true classes per node."""
    out = []
    for i in range(start, start + count):
        s = tissue_sample(seed, i)
        g = build_graph(s.labels, s.image)
        out.append(GraphExample(g, s.classes[g.labels]))
    return out


def served(onnx: Path, card: Path, test: list[GraphExample]) -> dict[str, Any]:
    """A trained and exported graph model scored on ``test`` through ONNX Runtime."""
    from pixelmill.ml.graph_runtime import classify
    from pixelmill.ml.onnx_model import session
    from pixelmill.ml.scores import classification_scores
    from pixelmill.ml.spec import InputSpec

    info = json.loads(card.read_text())
    spec = InputSpec.model_validate(info["input_spec"])
    run = session(onnx.read_bytes(), threads=1)
    preds, truths, summaries = [], [], []
    for ex in test:
        classes = classify(run, spec, ex.graph).argmax(axis=1)
        preds.append(classes)
        truths.append(ex.targets)
        summaries.append(graph_measures.summarize(ex.graph, classes, CLASSES))
    return {
        "test": classification_scores(np.concatenate(preds), np.concatenate(truths), 2),
        "val": info["metrics"],
        "best_epoch": info["training"]["best_epoch"],
        "epochs_run": info["training"]["epochs_run"],
        "train_seconds": info["training"]["seconds"],
        "onnx_bytes": onnx.stat().st_size,
        "command": info["command"],
        "study": graph_measures.combine(summaries),
    }


def study(net: Any, test: list[GraphExample]) -> dict[str, Any]:
    """Per-study graph measurements from ``net``'s predictions (``None``: the truth)."""
    summaries = []
    for ex in test:
        classes = ex.targets if net is None else predict(net, ex.graph).argmax(axis=1)
        summaries.append(graph_measures.summarize(ex.graph, classes, CLASSES))
    return graph_measures.combine(summaries)


def _rows(runs: dict[str, Any], truth: dict[str, Any]) -> list[tuple[object, ...]]:
    def measured(s: dict[str, Any]) -> tuple[str, str, str]:
        return (
            f"{s['class_fractions']['tumour']:.3f}",
            f"{s['same_class_edges']:.3f}",
            f"{s['mean_neighbours']['tumour']['stroma']:.3f}",
        )

    rows: list[tuple[object, ...]] = [
        (
            name,
            f"{r['test']['accuracy']:.3f}",
            f"{r['test']['f1']:.3f}",
            *measured(r["study"]),
            f"{r['train_seconds']:.1f}",
            r["best_epoch"],
        )
        for name, r in runs.items()
    ]
    return [*rows, ("truth", "", "", *measured(truth), "", "")]


def main() -> None:
    p = parser(__doc__, "12 + 4 training images, 8 test images")
    p.add_argument("--train", type=int, default=48)
    p.add_argument("--val", type=int, default=12)
    p.add_argument("--test", type=int, default=40)
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="training seed (the data stay the same)")
    p.add_argument("--onnx", type=Path, help="an exported graph model to score as well")
    p.add_argument("--card", type=Path, help="its model card (input spec, training)")
    args = parse(p, {"train": 12, "val": 4, "test": 8, "epochs": 40})
    t0 = time.perf_counter()
    train = examples(0, 0, args.train)
    val = examples(0, args.train, args.val)
    test = examples(1, 0, args.test)
    build_s = time.perf_counter() - t0
    runs: dict[str, Any] = {}
    truth = study(None, test)
    for name, aggregate in (("graph network", True), ("per-cell MLP", False)):
        options = GraphFitOptions(
            classes=len(CLASSES),
            layers=args.layers,
            width=args.width,
            aggregate=aggregate,
            epochs=args.epochs,
            seed=args.seed,
        )
        result = fit(train, val, options)
        scores = evaluate(result.network, test, len(CLASSES))
        measured = study(result.network, test)
        runs[name] = {
            "test": scores,
            "val": result.metrics,
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "train_seconds": result.seconds,
            "parameters": sum(p.numel() for p in result.network.parameters()),
            "study": measured,
        }
    if args.onnx and args.card:
        runs["served (pixelmill train, ONNX Runtime)"] = served(args.onnx, args.card, test)
    cells = sum(len(ex.targets) for ex in test)
    rows = _rows(runs, truth)
    header = [
        "model",
        "accuracy",
        "macro F1",
        "tumour share",
        "same-class edges",
        "stroma around tumour",
        "train s",
        "best epoch",
    ]
    print(f"\n{args.test} test images (seed 1), {cells} cells")
    print(table(header, rows, "lrrrrrrr"))
    result = {
        "images": {"train": args.train, "val": args.val, "test": args.test, "test_cells": cells},
        "options": {
            "epochs": args.epochs,
            "layers": args.layers,
            "width": args.width,
            "seed": args.seed,
        },
        "graph_build_seconds": round(build_s, 1),
        "runs": runs,
        "truth": truth,
    }
    gnn, mlp = runs["graph network"]["test"], runs["per-cell MLP"]["test"]
    headline = [
        f"graph network accuracy {gnn['accuracy']:.3f}, macro F1 {gnn['f1']:.3f}",
        f"per-cell MLP accuracy {mlp['accuracy']:.3f}, macro F1 {mlp['f1']:.3f}",
    ]
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1, default=str))
    save(f"ml_graph-seed{args.seed}" if args.seed else "ml_graph", result, headline)


if __name__ == "__main__":
    main()
