"""Evaluation metrics on numpy arrays (shared by training, evaluation and benchmarks)."""

from __future__ import annotations

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
