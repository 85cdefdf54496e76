"""Outlines of labelled objects as polygons, for turning segmentation output into
annotations (``promote``).

Each object's outer boundary is traced on its own bounding box (OpenCV
``findContours``, pixel corners), so the cost follows the objects' sizes, not the
image's. Coordinates are full-resolution pixels ``(x, y)``; a pixel ``(r, c)`` covers
``[c, c+1] x [r, r+1]``, so a one-pixel object is a unit square. Holes are not kept
(nuclei and cells have none worth keeping); an object in several pieces keeps its
largest.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def label_polygons(
    labels: np.ndarray, ids: Iterable[int] | None = None
) -> dict[int, list[list[float]]]:
    """The outline of each object of ``labels`` (2-D integer array, 0 = background) as
    a closed ring ``[[x, y], ...]`` (first point repeated last); ``ids``: only these
    objects (missing ones are left out).

    >>> labels = np.zeros((4, 4), np.uint16); labels[1:3, 1:3] = 7
    >>> label_polygons(labels)[7]
    [[1.0, 1.0], [1.0, 3.0], [3.0, 3.0], [3.0, 1.0], [1.0, 1.0]]
    """
    import cv2
    from scipy import ndimage

    if labels.ndim != 2:
        raise ValueError("labels must be a 2-D array")
    wanted = None if ids is None else {int(i) for i in ids}
    out: dict[int, list[list[float]]] = {}
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or (wanted is not None and index not in wanted):
            continue
        # traced at twice the resolution: the contour of the up-scaled mask runs along
        # pixel corners, which halved are the object's true edges
        mask = np.ascontiguousarray(labels[box] == index, dtype=np.uint8)
        big = np.kron(mask, np.ones((2, 2), np.uint8))
        big = np.pad(big, 1)
        contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        contour = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
        # back from the padded 2x grid: pixel (r, c) spans rows 2r+1..2r+2 there, so
        # halving (floored) gives its top edge r and, from its last row, r + 1
        xs = np.floor(contour[:, 0] / 2) + box[1].start
        ys = np.floor(contour[:, 1] / 2) + box[0].start
        ring = _dedupe(np.stack([xs, ys], axis=1))
        if len(ring) >= 3:
            out[index] = [[x, y] for x, y in ring] + [[ring[0][0], ring[0][1]]]
    return out


def _dedupe(points: np.ndarray) -> list[tuple[float, float]]:
    ring: list[tuple[float, float]] = []
    for x, y in points:
        p = (float(x), float(y))
        if not ring or ring[-1] != p:
            ring.append(p)
    while len(ring) > 1 and ring[0] == ring[-1]:
        ring.pop()
    return ring
