"""Tracking scores against true tracks given as points (one per object per frame).

Matching, per frame: a predicted object and a true point may pair when the point lies
inside the object (with the predicted label images) or within ``max_distance`` px of
its centroid; pairs are chosen one-to-one by least summed distance (Hungarian), keeping
a true track's pairing from earlier frames while it is still allowed (CLEAR MOT,
Bernardin & Stiefelhagen 2008). Points in ``ignore`` (annotated objects that are not
part of any true track) pair with leftover predictions, which are then neither false
positives nor counted anywhere.

==========================  ==================================================================
score                       definition
==========================  ==================================================================
``tp``, ``fp``, ``fn``      paired, unpaired predicted, unpaired true detections, all frames
``detection_f1``            ``2 tp / (2 tp + fp + fn)`` pooled; ``detection_f1_per_frame``: its mean
``id_switches``             a true track paired with another predicted track than the last
                            one it was paired with (CLEAR MOT)
``id_switches_per_100``     ``100 x id_switches / true tracks``
``fragmentations``          times a true track's pairing is interrupted between its first and
                            last paired frame (as ``motmetrics`` counts them)
``mota``                    ``1 - (fn + fp + id_switches) / true detections``
``motp_px``                 mean distance of the pairs
``idf1``, ``idp``, ``idr``  identity scores (Ristani et al. 2016): true and predicted tracks
                            paired one-to-one to maximise the frames in which they may pair
                            (``idtp``); ``idf1 = 2 idtp / (true + predicted detections)``
``mostly_tracked``/``lost`` true tracks paired in >= 80 % / <= 20 % of their frames
==========================  ==================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelmill.imaging.tracking.link import Tracks


@dataclass(frozen=True)
class Detections:
    """Tracked detections as parallel arrays; ``label`` is each predicted object's label
    in its frame's label image (None for points)."""

    frame: np.ndarray
    track: np.ndarray
    row: np.ndarray
    col: np.ndarray
    label: np.ndarray | None = None

    @classmethod
    def of(cls, tracks: Tracks) -> Detections:
        o = tracks.objects
        return cls(frame=o.frame, track=tracks.track, row=o.row, col=o.col, label=o.label)

    @classmethod
    def points(cls, rows: np.ndarray) -> Detections:
        """From an ``(n, 4)`` array of ``track, frame, row, col``."""
        rows = np.asarray(rows, np.float64)
        return cls(
            frame=rows[:, 1].astype(np.int64),
            track=rows[:, 0].astype(np.int64),
            row=rows[:, 2],
            col=rows[:, 3],
        )

    def at(self, t: int) -> np.ndarray:
        return np.flatnonzero(self.frame == t)


def _allowed(
    pred: Detections,
    p: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    labels: np.ndarray | None,
    t: int,
    max_distance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (n_pred x n_points) and which pairs may match."""
    dist = np.hypot(pred.row[p][:, None] - rows[None], pred.col[p][:, None] - cols[None])
    ok = dist <= max_distance
    if labels is not None and pred.label is not None and len(rows):
        height, width = labels.shape[1:]
        r = np.clip(np.round(rows).astype(int), 0, height - 1)
        c = np.clip(np.round(cols).astype(int), 0, width - 1)
        ok |= labels[t][r, c][None, :] == pred.label[p][:, None]
    return dist, ok


def _assign(dist: np.ndarray, ok: np.ndarray) -> list[tuple[int, int]]:
    if dist.size == 0 or not ok.any():
        return []
    from scipy.optimize import linear_sum_assignment

    big = float(dist.max()) * 10 + 1e6
    r, c = linear_sum_assignment(np.where(ok, dist, big))
    return [(int(i), int(j)) for i, j in zip(r, c, strict=True) if ok[i, j]]


def score_tracking(
    pred: Detections,
    truth: Detections,
    *,
    max_distance: float,
    labels: np.ndarray | None = None,
    ignore: np.ndarray | None = None,
) -> dict[str, Any]:
    """Tracking scores of ``pred`` against ``truth`` (see the module docstring).

    ``labels``: the predicted ``(T, H, W)`` label images (a point inside an object pairs
    with it); ``ignore``: ``(n, 3)`` frame, row, col of annotated objects outside the
    true tracks.
    """
    frames = int(max(pred.frame.max(initial=-1), truth.frame.max(initial=-1))) + 1
    last: dict[int, int] = {}
    pairs: list[tuple[int, int, float]] = []  # (true index, pred index, distance)
    switches, ignored = 0, 0
    per_frame: list[float] = []
    fp_total = 0
    together: dict[tuple[int, int], int] = {}  # (true track, predicted track) -> frames
    for t in range(frames):
        p, g = pred.at(t), truth.at(t)
        dist, ok = _allowed(pred, p, truth.row[g], truth.col[g], labels, t, max_distance)
        for a, b in zip(*np.nonzero(ok), strict=True):
            key = (int(truth.track[g[b]]), int(pred.track[p[a]]))
            together[key] = together.get(key, 0) + 1
        chosen = _keep_previous(pred, truth, p, g, ok, last)
        free_p = [i for i in range(len(p)) if i not in {a for a, _ in chosen}]
        free_g = [j for j in range(len(g)) if j not in {b for _, b in chosen}]
        sub = _assign(dist[np.ix_(free_p, free_g)], ok[np.ix_(free_p, free_g)])
        chosen += [(free_p[a], free_g[b]) for a, b in sub]
        for a, b in chosen:
            gt_track, pred_track = int(truth.track[g[b]]), int(pred.track[p[a]])
            if gt_track in last and last[gt_track] != pred_track:
                switches += 1
            last[gt_track] = pred_track
            pairs.append((int(g[b]), int(p[a]), float(dist[a, b])))
        leftover = [i for i in range(len(p)) if i not in {a for a, _ in chosen}]
        n_ignored = _ignored(pred, p[leftover], ignore, labels, t, max_distance)
        ignored += n_ignored
        fp = len(leftover) - n_ignored
        fp_total += fp
        tp, fn = len(chosen), len(g) - len(chosen)
        per_frame.append(2 * tp / max(2 * tp + fp + fn, 1))
    counts = (pairs, switches, fp_total, ignored)
    return _summarise(pred, truth, counts, per_frame, _idtp(together))


def _keep_previous(
    pred: Detections,
    truth: Detections,
    p: np.ndarray,
    g: np.ndarray,
    ok: np.ndarray,
    last: dict[int, int],
) -> list[tuple[int, int]]:
    """Pairs carried over from earlier frames that are still allowed."""
    where = {int(pred.track[i]): a for a, i in enumerate(p)}
    kept: list[tuple[int, int]] = []
    for b, j in enumerate(g):
        a = where.get(last.get(int(truth.track[j]), -1))
        if a is not None and ok[a, b] and all(a != x for x, _ in kept):
            kept.append((a, b))
    return kept


def _ignored(
    pred: Detections,
    p: np.ndarray,
    ignore: np.ndarray | None,
    labels: np.ndarray | None,
    t: int,
    max_distance: float,
) -> int:
    """How many of the leftover predictions ``p`` pair with an ignored point."""
    if ignore is None or len(p) == 0:
        return 0
    here = ignore[ignore[:, 0] == t]
    dist, ok = _allowed(pred, p, here[:, 1], here[:, 2], labels, t, max_distance)
    return len(_assign(dist, ok))


def _summarise(
    pred: Detections,
    truth: Detections,
    counts: tuple[list[tuple[int, int, float]], int, int, int],
    per_frame: list[float],
    idtp: int,
) -> dict[str, Any]:
    pairs, switches, fp, ignored = counts
    n_true, tp = len(truth.frame), len(pairs)
    fn = n_true - tp
    gt_tracks = np.unique(truth.track)
    paired = {i for i, _, _ in pairs}
    coverage = [np.mean([i in paired for i in np.flatnonzero(truth.track == k)]) for k in gt_tracks]
    n_pred = len(pred.frame) - ignored
    return {
        "frames": len(per_frame),
        "true_tracks": len(gt_tracks),
        "true_detections": n_true,
        "predicted_tracks": len(np.unique(pred.track)),
        "predicted_detections": len(pred.frame),
        "ignored_detections": ignored,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "detection_f1": 2 * tp / max(2 * tp + fp + fn, 1),
        "detection_f1_per_frame": float(np.mean(per_frame)) if per_frame else 1.0,
        "id_switches": switches,
        "id_switches_per_100": 100.0 * switches / max(len(gt_tracks), 1),
        "fragmentations": _fragmentations(truth, paired),
        "mota": 1.0 - (fn + fp + switches) / max(n_true, 1),
        "motp_px": float(np.mean([d for _, _, d in pairs])) if pairs else None,
        "idf1": 2 * idtp / max(n_true + n_pred, 1),
        "idp": idtp / max(n_pred, 1),
        "idr": idtp / max(n_true, 1),
        "mostly_tracked": int(sum(c >= 0.8 for c in coverage)),
        "mostly_lost": int(sum(c <= 0.2 for c in coverage)),
    }


def _fragmentations(truth: Detections, paired: set[int]) -> int:
    count = 0
    for k in np.unique(truth.track):
        idx = np.flatnonzero(truth.track == k)
        hit = np.array([i in paired for i in idx[np.argsort(truth.frame[idx])]])
        if hit.any():
            first, final = np.flatnonzero(hit)[[0, -1]]
            run = hit[first : final + 1].astype(int)
            count += int((np.diff(run) == -1).sum())
    return count


def _idtp(together: dict[tuple[int, int], int]) -> int:
    """The most frames a one-to-one pairing of true and predicted tracks can share."""
    if not together:
        return 0
    from scipy.optimize import linear_sum_assignment

    gt_ids = sorted({g for g, _ in together})
    pr_ids = sorted({p for _, p in together})
    gi = {k: n for n, k in enumerate(gt_ids)}
    pj = {k: n for n, k in enumerate(pr_ids)}
    counts = np.zeros((len(gt_ids), len(pr_ids)), np.int64)
    for (g, p), n in together.items():
        counts[gi[g], pj[p]] = n
    r, c = linear_sum_assignment(-counts)
    return int(counts[r, c].sum())


@dataclass(frozen=True)
class Division:
    """A mother ending at ``frame - 1`` (at ``mother``, row/col px) and two daughters
    starting at ``frame`` (at ``daughters``)."""

    frame: int
    mother: tuple[float, float]
    daughters: tuple[tuple[float, float], tuple[float, float]]


def divisions_of(tracks: Tracks) -> list[Division]:
    """The divisions a tracking found (mothers with exactly two daughters)."""
    o = tracks.objects
    out = []
    for mother, children in sorted(tracks.children().items()):
        if len(children) != 2:
            continue
        last = np.flatnonzero(tracks.track == mother)[-1]
        firsts = [np.flatnonzero(tracks.track == c)[0] for c in children]
        out.append(
            Division(
                frame=int(o.frame[firsts[0]]),
                mother=(float(o.row[last]), float(o.col[last])),
                daughters=(
                    (float(o.row[firsts[0]]), float(o.col[firsts[0]])),
                    (float(o.row[firsts[1]]), float(o.col[firsts[1]])),
                ),
            )
        )
    return out


def score_divisions(
    pred: list[Division], truth: list[Division], *, max_distance: float, frame_tolerance: int = 1
) -> dict[str, float]:
    """Found divisions against true ones, paired one-to-one: a pair needs frames at most
    ``frame_tolerance`` apart and mother and both daughters (in either order) within
    ``max_distance`` px. Returns ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``."""
    cost = np.full((len(pred), len(truth)), np.inf)
    for i, p in enumerate(pred):
        for j, t in enumerate(truth):
            if abs(p.frame - t.frame) > frame_tolerance:
                continue
            d = _near(p.mother, t.mother) + min(
                _near(p.daughters[0], t.daughters[0]) + _near(p.daughters[1], t.daughters[1]),
                _near(p.daughters[0], t.daughters[1]) + _near(p.daughters[1], t.daughters[0]),
            )
            if d <= 3 * max_distance and _each_near(p, t, max_distance):
                cost[i, j] = d
    ok = np.isfinite(cost)
    tp = len(_assign(np.where(ok, cost, 0.0), ok))
    fp, fn = len(pred) - tp, len(truth) - tp
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / max(tp + fp, 1),
        "recall": tp / max(tp + fn, 1),
        "f1": 2 * tp / max(2 * tp + fp + fn, 1),
    }


def _near(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def _each_near(p: Division, t: Division, limit: float) -> bool:
    if _near(p.mother, t.mother) > limit:
        return False
    straight = max(_near(p.daughters[0], t.daughters[0]), _near(p.daughters[1], t.daughters[1]))
    crossed = max(_near(p.daughters[0], t.daughters[1]), _near(p.daughters[1], t.daughters[0]))
    return min(straight, crossed) <= limit
