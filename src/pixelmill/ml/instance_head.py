"""The instance head of a segmentation model: training targets from instance labels,
and the post-processing that turns the head's output into labelled objects.

A model with ``InputSpec.head == "distance"`` has two sigmoid output channels:

0. foreground: the probability that a pixel belongs to any object (the whole object,
   no line between touching ones), thresholded into the served mask as before;
1. distance: each object's Euclidean distance to its own border (touching neighbours
   count as border), divided by that object's largest distance, so every object peaks
   at 1 in its middle and falls to 0 at its outline and where it touches another.

Objects are the seeded watershed (:func:`skimage.segmentation.watershed`) of the
negated distance inside the foreground, seeded by the connected regions where the
distance exceeds ``seed_threshold`` (each object's core, half its radius for the default
0.5: two touching nuclei have two cores however they touch). Foreground left without a
seed (objects too small for a core) keeps its own connected components. Numpy, scipy,
scikit-image only, no I/O.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: what ``InputSpec.head`` can be: "mask" (one channel; objects by the classical
#: splitter, :func:`pixelmill.ml.scores.instances`) or "distance" (this module)
HEADS = ("mask", "distance")


def distance_target(labels: NDArray[np.integer], cap: float = 0.0) -> NDArray[np.float32]:
    """The normalised per-object distance map of an instance label image (0 = background):
    (rows, cols) float32 in 0..1, 0 outside objects, each object's maximum 1. With
    ``cap`` > 0 the distance is in pixels divided by ``cap`` and clipped at 1 instead
    (local: a network need not see a whole object to know it).

    >>> labels = np.zeros((5, 11), np.int32); labels[:, :5] = 1; labels[:, 5:10] = 2
    >>> [round(float(v), 2) for v in distance_target(labels)[2]]
    [0.33, 0.67, 1.0, 0.67, 0.33, 0.33, 0.67, 1.0, 0.67, 0.33, 0.0]
    """
    from scipy import ndimage

    lab = np.asarray(labels)
    out = np.zeros(lab.shape, np.float32)
    for index, window in enumerate(ndimage.find_objects(lab), 1):
        if window is None:
            continue
        inside = np.pad(lab[window] == index, 1)
        dist = np.asarray(ndimage.distance_transform_edt(inside), np.float32)[1:-1, 1:-1]
        top = cap if cap > 0 else float(dist.max())
        if top > 0:
            region = out[window]
            own = lab[window] == index
            region[own] = np.minimum(dist[own] / top, 1.0)
    return out


def targets(labels: NDArray[np.integer], cap: float = 0.0) -> NDArray[np.float32]:
    """The (2, rows, cols) float32 training target of the distance head: foreground
    (0/1) and :func:`distance_target` (``cap``: see there)."""
    lab = np.asarray(labels)
    return np.stack([(lab > 0).astype(np.float32), distance_target(lab, cap)])


def seeded_instances(
    mask: NDArray[np.bool_],
    distance: NDArray[np.floating],
    *,
    seed_threshold: float = 0.5,
    min_fraction: float = 0.0,
    fill: bool = False,
) -> NDArray[np.int32]:
    """Labelled objects (1..N, int32) from a foreground mask and the distance channel:
    seeded watershed of ``-distance`` inside ``mask`` (see the module docstring).
    Objects smaller than ``min_fraction`` x the median object area are dropped; with
    ``fill``, holes are filled first (:func:`pixelmill.ml.scores.fill_object_holes`)."""
    import cv2
    from skimage.segmentation import relabel_sequential, watershed

    from pixelmill.ml.scores import fill_object_holes

    mask = np.asarray(mask, bool)
    dist = np.asarray(distance, np.float32)
    if dist.shape != mask.shape:
        raise ValueError(f"distance {dist.shape} and mask {mask.shape} differ in shape")
    if fill:
        mask = fill_object_holes(mask)
    cores = ((dist > seed_threshold) & mask).astype(np.uint8)
    count, seeds = cv2.connectedComponents(cores, connectivity=8)
    markers = np.asarray(seeds, np.int32)
    # foreground that no core reaches (a speck too small for a core): its own objects
    _n, pieces = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    pieces = np.asarray(pieces, np.int32)
    seeded = np.unique(pieces[markers > 0])
    orphan = mask & ~np.isin(pieces, seeded)
    markers[orphan] = pieces[orphan] + count
    labels = np.asarray(watershed(-dist, markers, mask=mask), np.int32)
    labels = np.asarray(relabel_sequential(labels)[0], np.int32)
    if min_fraction > 0 and labels.max() > 0:
        areas = np.bincount(labels.ravel())
        keep = areas >= min_fraction * float(np.median(areas[1:]))
        keep[0] = False
        labels = np.where(keep[labels], labels, 0)
        labels = np.asarray(relabel_sequential(labels)[0], np.int32)
    return labels
