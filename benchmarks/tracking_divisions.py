"""Divisions and lineage on synthetic time-lapses with known lineage: how many of the
true divisions the tracker finds, how many it invents, and the tracking scores, with the
true label images (linking alone) and with ``segment_nuclei`` on every frame.

    PYTHONPATH=src .venv/bin/python benchmarks/tracking_divisions.py

Data: ``pixelmill.ml.synthetic_timelapse.nuclei_lineage`` (seed 3, never used to train
or tune anything), 128 x 128, 12 frames, 6-22 nuclei, a 3 % chance per nucleus and frame
of dividing (daughters of about half the mother's area start beside it and move apart),
blinks and flicker as in training. Tracker: ``pixelmill.imaging.tracking.track`` with its
defaults. A found division matches a true one when the frames are at most one apart and
mother and daughters lie within 6 px. Counts are pooled over the sequences.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from _harness import parse, parser, save, table


def true_divisions(labels: np.ndarray, lineage: dict[int, int]) -> list[Any]:
    from pixelmill.imaging.tracking import frame_objects
    from pixelmill.imaging.tracking.metrics import Division

    o = frame_objects(labels)
    out = []
    for mother in sorted(set(lineage.values())):
        kids = [d for d, m in lineage.items() if m == mother]
        mine = np.flatnonzero(o.label == mother)
        firsts = [np.flatnonzero(o.label == k) for k in kids]
        if len(kids) != 2 or not len(mine) or not all(len(f) for f in firsts):
            continue  # a mother or daughter entirely outside the field
        last, a, b = mine[-1], firsts[0][0], firsts[1][0]
        out.append(
            Division(
                frame=int(o.frame[a]),
                mother=(float(o.row[last]), float(o.col[last])),
                daughters=((float(o.row[a]), float(o.col[a])), (float(o.row[b]), float(o.col[b]))),
            )
        )
    return out


def main() -> None:
    p = parser(__doc__, "5 sequences")
    p.add_argument("--sequences", type=int, default=20)
    p.add_argument("--seed", type=int, default=3, help="generator seed (4: development)")
    args = parse(p, {"sequences": 5})
    from pixelmill.imaging.analysis.segment import segment_nuclei
    from pixelmill.imaging.tracking import frame_objects, track
    from pixelmill.imaging.tracking.metrics import (
        Detections,
        divisions_of,
        score_divisions,
        score_tracking,
    )
    from pixelmill.ml.synthetic_timelapse import TimelapseConfig, nuclei_lineage

    cfg = TimelapseConfig(frames=12, divisions=0.03)
    methods = {
        "true labels (linking alone)": lambda f, lab: lab,
        "segment_nuclei (Otsu)": lambda f, lab: np.stack(
            [segment_nuclei(x).labels.astype(np.int32) for x in f]
        ),
    }
    sums: dict[str, dict[str, float]] = {m: {} for m in methods}
    started = time.perf_counter()
    for i in range(args.sequences):
        frames, labels, lineage = nuclei_lineage(args.seed, i, cfg)
        o = frame_objects(labels)
        truth = Detections(frame=o.frame, track=o.label, row=o.row, col=o.col)
        real = true_divisions(labels, lineage)
        for name, segment in methods.items():
            found = segment(frames, labels)
            tracks = track(found, intensity=frames)
            s = score_tracking(Detections.of(tracks), truth, max_distance=6, labels=found)
            d = score_divisions(divisions_of(tracks), real, max_distance=6)
            add = {
                "true_divisions": len(real),
                "div_tp": d["tp"],
                "div_fp": d["fp"],
                "div_fn": d["fn"],
            }
            add |= {k: s[k] for k in ("tp", "fp", "fn", "id_switches", "true_detections")}
            add["true_tracks"] = s["true_tracks"]
            for k, v in add.items():
                sums[name][k] = sums[name].get(k, 0) + v
    rows = {name: finish(s) for name, s in sums.items()}
    result = {"sequences": args.sequences, "seconds": time.perf_counter() - started, "rows": rows}
    print(report(rows))
    save(f"tracking_divisions-seed{args.seed}", result, headline(rows))


def finish(s: dict[str, float]) -> dict[str, float]:
    tp, fp, fn = s["div_tp"], s["div_fp"], s["div_fn"]
    s["division_precision"] = tp / max(tp + fp, 1)
    s["division_recall"] = tp / max(tp + fn, 1)
    s["division_f1"] = 2 * tp / max(2 * tp + fp + fn, 1)
    s["mota"] = 1 - (s["fn"] + s["fp"] + s["id_switches"]) / max(s["true_detections"], 1)
    s["detection_f1"] = 2 * s["tp"] / max(2 * s["tp"] + s["fp"] + s["fn"], 1)
    return s


def report(rows: dict[str, dict[str, float]]) -> str:
    keys = (
        "true_divisions",
        "div_tp",
        "div_fp",
        "div_fn",
        "division_precision",
        "division_recall",
        "division_f1",
        "detection_f1",
        "mota",
        "id_switches",
    )
    body = [
        [name] + [f"{r[k]:.3f}" if isinstance(r[k], float) else r[k] for k in keys]
        for name, r in rows.items()
    ]
    return table(["segmentation", *keys], body)


def headline(rows: dict[str, dict[str, float]]) -> list[str]:
    return [
        f"{name}: divisions found {r['div_tp']}/{r['true_divisions']}, {r['div_fp']} invented "
        f"(F1 {r['division_f1']:.3f}), MOTA {r['mota']:.3f}"
        for name, r in rows.items()
    ]


if __name__ == "__main__":
    main()
