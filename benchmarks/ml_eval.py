"""Accuracy of a segmentation model vs the classical pipeline (Otsu / local threshold +
watershed from ``pixelmill.imaging.analysis``) on held-out data.

    .venv/bin/python benchmarks/ml_eval.py                 # held-out synthetic images
    .venv/bin/python benchmarks/ml_eval.py --real DIR      # + a folder of real images
    .venv/bin/python benchmarks/ml_eval.py --points DIR    # + real images with points
    .venv/bin/python benchmarks/ml_eval.py --quick         # 4 synthetic images (+ 4 at 768)

``DIR`` holds ``images/NAME.*`` and ``masks/NAME.*`` (binary masks or instance label
images, 0 = background). Metrics per image, averaged: pixel Dice and IoU, and object F1
at IoU 0.5 (model masks are split into objects by the classical pipeline's own
splitter, ``pixelmill.ml.scores.instances``), and the relative object count error
|found - true| / true. The synthetic set uses generator seed 123, never used in
training.

``--points DIR`` holds ``images/NAME.*`` and ``points/NAME.csv`` (``y,x``, one point per
nucleus): detection is scored instead — an object with one or more points inside is one
true positive (its extra points are misses: merged nuclei), an object with none a false
positive, a point on background a miss; F1 = 2 TP / (2 TP + FP + FN).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _harness import ROOT, parse, parser, save


def load_pairs(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from scipy import ndimage

    from pixelmill.ml.preprocess import decode

    pairs = []
    masks = {p.stem: p for p in (folder / "masks").iterdir() if p.is_file()}
    for path in sorted((folder / "images").iterdir()):
        if path.stem not in masks:
            continue
        image = decode(path.read_bytes())
        truth = decode(masks[path.stem].read_bytes())
        if truth.ndim == 3:
            truth = truth[..., 0]
        values = np.unique(truth)
        labels = ndimage.label(truth > 0)[0] if len(values) <= 2 else truth.astype(np.int32)
        pairs.append((path.stem, image, labels))
    return pairs


def synthetic_pairs(count: int, side: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from pixelmill.ml.synthetic import NucleiConfig, nuclei_labelled

    cfg = NucleiConfig(size=(side, side))
    return [(f"synthetic-{side}-{i}", *nuclei_labelled(123, i, cfg)) for i in range(count)]


def evaluate(
    pairs: list[tuple[str, np.ndarray, np.ndarray]], model: Any, scale: float = 1.0
) -> dict[str, Any]:
    """Each method's masks against instance labels (Dice, IoU, object F1, count error)."""
    return _score(pairs, model, scale, outline_scores)


def outline_scores(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pixel and object scores of one label image against true instance labels."""
    from pixelmill.ml.scores import instance_f1, segmentation_scores

    labels = labels.astype(np.int32)
    scores = segmentation_scores(labels > 0, truth > 0)
    scores.update(
        {
            f"object_{k}": v
            for k, v in instance_f1(labels, truth).items()
            if k in ("precision", "recall", "f1")
        }
    )
    found, true = len(np.unique(labels)) - 1, len(np.unique(truth)) - 1
    scores["count_rel_error"] = abs(found - true) / max(true, 1)
    return scores


def load_points(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from pixelmill.ml.preprocess import decode

    out = []
    for path in sorted((folder / "images").iterdir()):
        csv = folder / "points" / f"{path.stem}.csv"
        if csv.exists():
            pts = np.loadtxt(csv, delimiter=",", skiprows=1, ndmin=2)
            out.append((path.stem, decode(path.read_bytes()), pts))
    return out


def detection(labels: np.ndarray, points: np.ndarray) -> dict[str, float]:
    """Point-annotation detection scores of one label image (see the module docstring)."""
    rows, cols = labels.shape
    ys = np.clip(np.round(points[:, 0]).astype(int), 0, rows - 1)
    xs = np.clip(np.round(points[:, 1]).astype(int), 0, cols - 1)
    hit = labels[ys, xs]
    objects = set(np.unique(labels)) - {0}
    found = set(hit[hit > 0].tolist())
    tp = len(found)
    fn = int((hit == 0).sum()) + (int((hit > 0).sum()) - tp)
    fp = len(objects - found)
    return {
        "precision": tp / max(tp + fp, 1),
        "recall": tp / max(len(points), 1),
        "f1": 2 * tp / max(2 * tp + fp + fn, 1),
        "count_rel_error": abs(len(objects) - len(points)) / max(len(points), 1),
    }


def evaluate_points(
    pairs: list[tuple[str, np.ndarray, np.ndarray]], model: Any, scale: float = 1.0
) -> dict[str, Any]:
    """Each method's objects against one point per nucleus (detection scores)."""
    return _score(pairs, model, scale, detection)


def _score(
    pairs: list[tuple[str, np.ndarray, np.ndarray]],
    model: Any,
    scale: float,
    scorer: Callable[[np.ndarray, np.ndarray], dict[str, float]],
) -> dict[str, Any]:
    """``scorer(labels, truth)`` of every method on every image, averaged per method."""
    methods = _methods(model, scale)
    rows: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    for _name, image, truth in pairs:
        for method, run in methods.items():
            rows[method].append(scorer(np.asarray(run(image)), truth))
    return _averaged(rows, len(pairs))


def _averaged(rows: dict[str, list[dict[str, float]]], images: int) -> dict[str, Any]:
    """Each method's scores averaged over the images."""
    return {
        m: {k: round(float(np.mean([r[k] for r in rs])), 4) for k in rs[0]}
        for m, rs in rows.items()
        if rs
    } | {"images": images}


def _methods(model: Any, scale: float) -> dict[str, Any]:
    """Each method: image -> instance labels."""
    from pixelmill.imaging.analysis.segment import segment_nuclei

    return {
        "model": lambda img: _model_objects(model, img, scale),
        "classical_otsu": lambda img: segment_nuclei(_grey(img)).labels,
        "classical_local": lambda img: segment_nuclei(_grey(img), method="local").labels,
    }


def _model_objects(model: Any, image: np.ndarray, scale: float) -> np.ndarray:
    """The model's objects, with its own post-processing (a distance head's seeded
    watershed, or the classical splitter)."""
    prediction = model.predict(image, scale=scale)
    return np.asarray(model.spec.objects(prediction.mask > 0, prediction.distance))


def _grey(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else image[..., :3].mean(axis=2).astype(image.dtype)


def main() -> None:
    p = parser(__doc__, "4 synthetic images at 256² and 4 at 768²")
    p.add_argument("--model", default=str(ROOT / "src/pixelmill/ml/models/nuclei.onnx"))
    p.add_argument(
        "--real", type=Path, action="append", default=[], help="folder with images/ and masks/"
    )
    p.add_argument(
        "--points", type=Path, action="append", default=[], help="folder with images/ and points/"
    )
    p.add_argument("--count", type=int, default=40)
    p.add_argument(
        "--scale", type=float, default=1.0, help="the model's input scale on the real sets"
    )
    args = parse(p, {"count": 4})
    from pixelmill.ml.onnx_model import OnnxModel
    from pixelmill.ml.spec import InputSpec

    card = json.loads(Path(args.model).with_suffix(".json").read_text())
    model = OnnxModel(
        Path(args.model).read_bytes(), InputSpec.model_validate(card["input_spec"]), batching=False
    )
    result = {
        "synthetic_256": evaluate(synthetic_pairs(args.count, 256), model),
        "synthetic_768": evaluate(synthetic_pairs(max(4, args.count // 8), 768), model),
    }
    for folder in args.real:
        result[f"real:{folder.name}"] = evaluate(load_pairs(folder), model, args.scale)
    for folder in args.points:
        result[f"points:{folder.name}"] = evaluate_points(load_points(folder), model, args.scale)
    print(json.dumps(result, indent=1))
    save("ml_eval-real" if args.real or args.points else "ml_eval", result, headline(result))


def headline(result: dict[str, Any]) -> list[str]:
    """Object F1 of the model against the better classical method, per data set."""
    lines = []
    for name, scores in result.items():
        key = "f1" if name.startswith("points:") else "object_f1"
        classical = max(scores["classical_otsu"][key], scores["classical_local"][key])
        lines.append(
            f"{name} ({scores['images']} images): F1 model {scores['model'][key]:.3f} vs "
            f"classical {classical:.3f}"
        )
    return lines


if __name__ == "__main__":
    main()
