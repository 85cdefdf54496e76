"""Evaluation metrics on numpy arrays (shared by training, evaluation and benchmarks)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def segmentation_scores(pred: NDArray[np.bool_], truth: NDArray[np.bool_]) -> dict[str, float]:
    """Dice, IoU and pixel accuracy of binary masks (any shape, same shape).

    Empty prediction and empty truth score 1.0 (nothing to find, nothing found).
    """
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    inter = float(np.logical_and(p, t).sum())
    total = float(p.sum() + t.sum())
    union = float(np.logical_or(p, t).sum())
    return {
        "dice": 1.0 if total == 0 else 2 * inter / total,
        "iou": 1.0 if union == 0 else inter / union,
        "pixel_accuracy": float((p == t).mean()),
    }


def classification_scores(
    pred: NDArray[np.int64], truth: NDArray[np.int64], classes: int
) -> dict[str, float]:
    """Accuracy and macro F1 of integer class predictions."""
    p, t = np.asarray(pred), np.asarray(truth)
    f1s = []
    for c in range(classes):
        tp = float(np.sum((p == c) & (t == c)))
        fp = float(np.sum((p == c) & (t != c)))
        fn = float(np.sum((p != c) & (t == c)))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return {"accuracy": float((p == t).mean()) if p.size else 0.0, "f1": float(np.mean(f1s))}


def instances(
    mask: NDArray[np.bool_], *, grow: int = 0, min_fraction: float = 0.0, fill: bool = False
) -> NDArray[np.int32]:
    """Split a model's binary mask into labelled objects with the classical pipeline's
    splitter (:func:`pixelmill.imaging.analysis.morphology.split_touching`, markers
    0.6 x the typical object radius apart, h-maxima merging), then, ``grow`` times, give
    each background pixel that touches two different objects to one of them: a model
    trained on masks with a line between touching objects
    (:func:`pixelmill.ml.synthetic.separate_touching`) predicts that line, and the
    objects get it back without growing anywhere else. Objects smaller than
    ``min_fraction`` x the median object area are dropped (fragments). With ``fill``,
    holes are filled first (:func:`fill_object_holes`). Labels are 1..N."""
    import cv2
    from skimage.segmentation import relabel_sequential

    from pixelmill.imaging.analysis.morphology import split_touching, typical_radius

    mask = np.asarray(mask, bool)
    if fill:
        mask = fill_object_holes(mask)
    labels = np.asarray(split_touching(mask, min_distance=typical_radius(mask) * 0.6))
    labels = np.asarray(relabel_sequential(labels)[0], dtype=np.int32)
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(grow):
        lab = labels.astype(np.float32)  # exact for < 2**24 objects
        high = np.asarray(cv2.dilate(lab, kernel))
        low = np.asarray(cv2.erode(np.where(lab > 0, lab, np.float32(np.inf)), kernel))
        contested = (lab == 0) & np.isfinite(low) & (low < high)
        if not contested.any():
            break
        labels[contested] = high[contested].astype(np.int32)
    if min_fraction > 0 and labels.max() > 0:
        areas = np.bincount(labels.ravel())
        keep = areas >= min_fraction * float(np.median(areas[1:]))
        keep[0] = False
        labels = np.where(keep[labels], labels, 0)
        labels = np.asarray(relabel_sequential(labels)[0], dtype=np.int32)
    return labels


def fill_object_holes(mask: NDArray[np.bool_], *, min_width: float = 1.5) -> NDArray[np.bool_]:
    """Fill the holes of a mask (background not connected to the border) that are at
    least ``2 x min_width`` px across somewhere and no larger than a disc of the typical
    object radius: a dark nucleolus the model left out, which would otherwise make a
    ring that the splitter cuts in two. The one-pixel lines between touching objects
    (masks trained with gaps) are never that wide, so they stay.

    >>> ring = np.zeros((9, 9), bool); ring[1:8, 1:8] = True; ring[3:6, 3:6] = False
    >>> bool(fill_object_holes(ring)[4, 4])
    True
    """
    import cv2

    from pixelmill.imaging.analysis.morphology import fill_holes, typical_radius

    mask = np.asarray(mask, bool)
    holes = fill_holes(mask) & ~mask
    if not holes.any():
        return mask
    count, found = cv2.connectedComponents(holes.astype(np.uint8), connectivity=4)
    labels = np.asarray(found, dtype=np.intp)
    depth = cv2.distanceTransform(holes.astype(np.uint8), cv2.DIST_L2, 3)
    width = np.zeros(count)
    np.maximum.at(width, labels.ravel(), np.asarray(depth).ravel())
    area = np.bincount(labels.ravel(), minlength=count)
    radius = typical_radius(mask)
    keep = (width >= min_width) & (area <= np.pi * radius * radius)
    keep[0] = False
    return np.asarray(mask | keep[labels])


def instance_f1(
    pred: NDArray[np.int32], truth: NDArray[np.int32], *, iou: float = 0.5
) -> dict[str, float]:
    """Object-level precision/recall/F1: a predicted object matches a true one at IoU ≥ ``iou``
    (IoU > 0.5 makes matches unique, so no assignment problem is needed)."""
    p, t = np.asarray(pred), np.asarray(truth)
    n_p, n_t = int(p.max()), int(t.max())
    if n_p == 0 or n_t == 0:
        return {
            "precision": float(n_p == n_t),
            "recall": float(n_p == n_t),
            "f1": float(n_p == n_t),
            "pred": n_p,
            "true": n_t,
        }
    pairs = np.stack([p.ravel(), t.ravel()], 1)
    pairs = pairs[(pairs[:, 0] > 0) & (pairs[:, 1] > 0)]
    inter = np.zeros((n_p + 1, n_t + 1))
    np.add.at(inter, (pairs[:, 0], pairs[:, 1]), 1)
    area_p = np.bincount(p.ravel(), minlength=n_p + 1)
    area_t = np.bincount(t.ravel(), minlength=n_t + 1)
    union = area_p[:, None] + area_t[None, :] - inter
    ious = np.where(union > 0, inter / np.maximum(union, 1), 0)[1:, 1:]
    tp = int(np.sum(ious.max(axis=1) >= iou))
    precision, recall = tp / n_p, tp / n_t
    f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "pred": n_p, "true": n_t}


#: the IoU thresholds of mean AP: 0.50, 0.55, ..., 0.90 (StarDist's / DSB2018's range)
AP_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(9))


def truth_instances(mask: NDArray[np.integer]) -> NDArray[np.int32]:
    """Ground-truth objects of an annotation mask: a binary mask (two values at most)
    is split into its 8-connected components (a one-pixel background line between
    touching objects, as :func:`pixelmill.ml.synthetic.separate_touching` draws, keeps
    them apart); an integer label image (more than two values) is kept as it is,
    renumbered 1..N. 0 is background.

    >>> truth_instances(np.array([[1, 1, 0, 1]], np.uint8)).tolist()
    [[1, 1, 0, 2]]
    """
    import cv2
    from skimage.segmentation import relabel_sequential

    arr = np.asarray(mask)
    if arr.size and len(np.unique(arr)) > 2:
        return np.asarray(relabel_sequential(arr.astype(np.int64))[0], dtype=np.int32)
    _count, labels = cv2.connectedComponents((arr > 0).astype(np.uint8), connectivity=8)
    return np.asarray(labels, dtype=np.int32)


def matched_ious(pred: NDArray[np.integer], truth: NDArray[np.integer]) -> NDArray[np.float64]:
    """The IoUs of the matched (predicted, true) object pairs: a one-to-one assignment
    maximising the summed IoU among pairs with IoU ≥ 0.5 (for thresholds ≥ 0.5 this is
    the matching of StarDist's ``matching``). Label images are (rows, cols), 0 =
    background, objects 1..N (gaps allowed)."""
    from scipy.optimize import linear_sum_assignment

    p, t = np.asarray(pred).astype(np.int64), np.asarray(truth).astype(np.int64)
    n_p, n_t = int(p.max(initial=0)), int(t.max(initial=0))
    if n_p == 0 or n_t == 0:
        return np.zeros(0)
    both = (p > 0) & (t > 0)
    inter = np.zeros((n_p + 1, n_t + 1))
    np.add.at(inter, (p[both], t[both]), 1)
    area_p = np.bincount(p.ravel(), minlength=n_p + 1)
    area_t = np.bincount(t.ravel(), minlength=n_t + 1)
    union = area_p[:, None] + area_t[None, :] - inter
    ious = np.where(union > 0, inter / np.maximum(union, 1), 0.0)[1:, 1:]
    ious = np.where(ious >= 0.5, ious, 0.0)
    rows, cols = linear_sum_assignment(-ious)
    found = ious[rows, cols]
    return np.asarray(found[found >= 0.5])


class ObjectTally:
    """Object-level counts summed over a dataset (images are added one at a time),
    then turned into scores: precision, recall, F1 at each IoU threshold, AP per
    threshold as ``TP / (TP + FP + FN)`` (the DSB2018 / StarDist convention, not the
    area under a precision-recall curve), their mean over :data:`AP_THRESHOLDS`, and
    panoptic quality (Kirillov et al. 2019: matches at IoU > 0.5, SQ = mean matched
    IoU, RQ = TP / (TP + FP/2 + FN/2), PQ = SQ x RQ). Pixel Dice/IoU are pooled over
    all pixels; the count error is signed ``(Σpredicted - Σtrue) / Σtrue`` plus the
    mean over images of ``|predicted - true| / true``."""

    def __init__(self) -> None:
        self.images = 0
        self.pred = 0
        self.true = 0
        self.matches: list[NDArray[np.float64]] = []
        self.inter = 0.0
        self.pixels_pred = 0.0
        self.pixels_true = 0.0
        self.count_errors: list[float] = []

    def add(self, pred: NDArray[np.integer], truth: NDArray[np.integer]) -> None:
        """One image's predicted and true objects (label images of the same shape)."""
        p, t = np.asarray(pred), np.asarray(truth)
        if p.shape != t.shape:
            raise ValueError(f"prediction {p.shape} and truth {t.shape} differ in shape")
        n_p, n_t = len(np.unique(p[p > 0])), len(np.unique(t[t > 0]))
        self.images += 1
        self.pred += n_p
        self.true += n_t
        self.matches.append(matched_ious(p, t))
        self.inter += float(np.logical_and(p > 0, t > 0).sum())
        self.pixels_pred += float((p > 0).sum())
        self.pixels_true += float((t > 0).sum())
        self.count_errors.append(abs(n_p - n_t) / n_t if n_t else float(n_p > 0))

    def at(self, threshold: float) -> dict[str, float]:
        """TP, FP, FN, precision, recall, F1 and AP at one IoU threshold (≥ 0.5)."""
        if threshold < 0.5:
            raise ValueError("thresholds below 0.5 need a different matching")
        tp = sum(int(np.sum(m >= threshold)) for m in self.matches)
        fp, fn = self.pred - tp, self.true - tp
        nothing = self.pred == 0 and self.true == 0
        return {
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "precision": 1.0 if nothing else (tp / self.pred if self.pred else 0.0),
            "recall": 1.0 if nothing else (tp / self.true if self.true else 0.0),
            "f1": 1.0 if nothing else 2 * tp / (2 * tp + fp + fn),
            "ap": 1.0 if nothing else tp / (tp + fp + fn),
        }

    def panoptic(self) -> dict[str, float]:
        found = np.concatenate([m[m > 0.5] for m in self.matches] or [np.zeros(0)])
        tp = len(found)
        fp, fn = self.pred - tp, self.true - tp
        if tp + fp + fn == 0:
            return {"pq": 1.0, "sq": 1.0, "rq": 1.0}
        sq = float(found.mean()) if tp else 0.0
        rq = tp / (tp + fp / 2 + fn / 2)
        return {"pq": sq * rq, "sq": sq, "rq": rq}

    def scores(self) -> dict[str, Any]:
        """Everything, as a flat JSON-able dict (``f1@0.5``, ``map``, ``pq``, ...)."""
        total = self.pixels_pred + self.pixels_true
        union = total - self.inter
        out: dict[str, Any] = {
            "images": self.images,
            "objects_true": self.true,
            "objects_pred": self.pred,
            "dice": 1.0 if total == 0 else 2 * self.inter / total,
            "iou": 1.0 if union == 0 else self.inter / union,
        }
        for threshold in (0.5, 0.75):
            s = self.at(threshold)
            for key in ("precision", "recall", "f1"):
                out[f"{key}@{threshold}"] = s[key]
        ap = {f"{th:.2f}": self.at(th)["ap"] for th in AP_THRESHOLDS}
        out["ap"] = ap
        out["map"] = float(np.mean(list(ap.values())))
        out.update(self.panoptic())
        out["count_error"] = 0.0 if self.true == 0 else (self.pred - self.true) / self.true
        out["count_abs_error"] = float(np.mean(self.count_errors)) if self.count_errors else 0.0
        return out


#: the metrics a promotion gate can compare, and whether higher is better
GATE_METRICS: dict[str, bool] = {
    "dice": True,
    "iou": True,
    "precision@0.5": True,
    "recall@0.5": True,
    "f1@0.5": True,
    "precision@0.75": True,
    "recall@0.75": True,
    "f1@0.75": True,
    "map": True,
    "pq": True,
    "sq": True,
    "rq": True,
    "count_abs_error": False,
}


def beats(candidate: dict[str, Any], holder: dict[str, Any], metric: str) -> bool:
    """Whether ``candidate``'s scores are strictly better than ``holder``'s on ``metric``
    (one of :data:`GATE_METRICS`)."""
    a, b = float(candidate[metric]), float(holder[metric])
    return a > b if GATE_METRICS[metric] else a < b
