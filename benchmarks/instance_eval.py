"""Object-level accuracy of nuclei models side by side: each model's own post-processing
(a distance head's seeded watershed, or the one-channel mask's classical splitter),
scored with ``pixelmill.ml.evaluation.score`` (what ``pixelmill models evaluate`` runs).

    .venv/bin/python benchmarks/instance_eval.py \\
        --model src/pixelmill/ml/models/nuclei.onnx --model /tmp/cand.onnx \\
        --labels /tmp/ev-default --labels /tmp/ev-real --points /tmp/ev-timelapse \\
        [--seed-threshold 0.4 --seed-threshold 0.5 ...]

Each ``--model`` is an ONNX file with its card beside it (same stem, ``.json``).
``--labels DIR``: ``images/`` + ``masks/`` (instance label images, or binary masks whose
8-connected components are the objects), pooled scores (Dice, P/R/F1 at IoU 0.5 and
0.75, mAP, PQ, signed count error). ``--points DIR``: ``images/`` + ``points/*.csv``, one
point per nucleus, detection F1 (see ``ml_eval.py``). ``--seed-threshold`` re-scores a
distance-head model at other seed thresholds (for choosing it on development sets).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from _harness import parse, parser, save
from ml_eval import detection, load_pairs, load_points

KEYS = ("dice", "precision@0.5", "recall@0.5", "f1@0.5", "f1@0.75", "map", "pq", "count_error")


def load_model(path: Path, seed_threshold: float | None = None) -> Any:
    from pixelmill.ml.onnx_model import OnnxModel
    from pixelmill.ml.spec import InputSpec

    spec = json.loads(path.with_suffix(".json").read_text())["input_spec"]
    if seed_threshold is not None:
        spec["seed_threshold"] = seed_threshold
    return OnnxModel(path.read_bytes(), InputSpec.model_validate(spec), batching=False, threads=2)


def score_labels(model: Any, folder: Path) -> dict[str, Any]:
    from pixelmill.ml.datasets import Item
    from pixelmill.ml.evaluation import score

    items = [
        Item(name=n, image=img, mask=((t > 0) * 255).astype(np.uint8), labels=t)
        for n, img, t in load_pairs(folder)
    ]
    out = score(model, items)
    return {k: round(float(out[k]), 4) for k in KEYS} | {
        "images": out["images"],
        "objects_true": out["objects_true"],
        "objects_pred": out["objects_pred"],
    }


def score_points(model: Any, folder: Path) -> dict[str, Any]:
    rows = []
    for _name, image, points in load_points(folder):
        prediction = model.predict(image)
        found = np.asarray(model.spec.objects(prediction.mask > 0, prediction.distance))
        rows.append(detection(found, points))
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]} | {
        "images": len(rows)
    }


def main() -> None:
    p = parser(__doc__, "nothing (no default data sets)")
    p.add_argument("--model", type=Path, action="append", required=True)
    p.add_argument("--labels", type=Path, action="append", default=[])
    p.add_argument("--points", type=Path, action="append", default=[])
    p.add_argument("--seed-threshold", type=float, action="append", default=[])
    args = parse(p, {})
    result: dict[str, Any] = {}
    for path in args.model:
        card = json.loads(path.with_suffix(".json").read_text())
        head = card["input_spec"].get("head", "mask")
        for seed in (args.seed_threshold or [None]) if head == "distance" else [None]:
            model = load_model(path, seed)
            key = f"{path.name}" + (f"@seed{seed}" if seed is not None else "")
            result[key] = {f"labels:{f.name}": score_labels(model, f) for f in args.labels}
            result[key] |= {f"points:{f.name}": score_points(model, f) for f in args.points}
            print(key, json.dumps(result[key]), flush=True)
    print(json.dumps(result, indent=1))
    lines = [
        f"{m} {d}: F1@0.5 {s.get('f1@0.5', s.get('f1'))}, Dice {s.get('dice', '-')}"
        for m, sets in result.items()
        for d, s in sets.items()
    ]
    save("instance_eval", result, lines)


if __name__ == "__main__":
    main()
