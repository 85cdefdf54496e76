"""Shape features of every object of a label image at once, vectorised: object borders,
perimeters (scikit-image's 4-connectivity weights), convex-hull pixel counts (for
solidity), per-object maxima. Lengths in pixels, areas in pixel counts.
"""

from __future__ import annotations

import numpy as np

_SQRT2 = float(np.sqrt(2.0))
_PERIMETER_WEIGHTS = np.zeros(50)
_PERIMETER_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1.0
_PERIMETER_WEIGHTS[[21, 33]] = _SQRT2
_PERIMETER_WEIGHTS[[13, 23]] = (1.0 + _SQRT2) / 2.0


def per_label_max(lab: np.ndarray, values: np.ndarray, ids: np.ndarray, top: int) -> np.ndarray:
    out = np.full(top + 1, -np.inf)
    np.maximum.at(out, lab, values)
    return out[ids]


def border_pixels(labels: np.ndarray) -> np.ndarray:
    """Object pixels with a 4-neighbour of another label (the image edge counts)."""
    p = np.pad(labels, 1)
    centre = p[1:-1, 1:-1]
    edge = (
        (centre != p[:-2, 1:-1])
        | (centre != p[2:, 1:-1])
        | (centre != p[1:-1, :-2])
        | (centre != p[1:-1, 2:])
    )
    return np.asarray(edge & (centre != 0))


def perimeters(labels: np.ndarray, border: np.ndarray, ids: np.ndarray, top: int) -> np.ndarray:
    """scikit-image's ``perimeter(neighborhood=4)`` of every object at once: each border
    pixel is coded by which 8-neighbours are border pixels of the same object."""
    if len(ids) == 0:
        return np.zeros(0)
    _h, w = labels.shape
    stride = w + 2
    p = np.pad(labels, 1).ravel()
    b = np.pad(border, 1).ravel()
    where = np.flatnonzero(b)
    lab = p[where]
    code = np.ones(len(where), np.int32)
    for dr, dc, weight in (
        (-1, 0, 2),
        (1, 0, 2),
        (0, -1, 2),
        (0, 1, 2),
        (-1, -1, 10),
        (-1, 1, 10),
        (1, -1, 10),
        (1, 1, 10),
    ):
        nb = where + (dr * stride + dc)
        code += weight * (b[nb] & (p[nb] == lab))
    weights = _PERIMETER_WEIGHTS[np.minimum(code, 49)]
    return np.bincount(lab.astype(np.int64), weights=weights, minlength=top + 1)[ids]


def convex_counts(labels: np.ndarray, border: np.ndarray, ids: np.ndarray, top: int) -> np.ndarray:
    """Pixel centres inside or on the convex hull of each object's pixel centres
    (Pick's theorem on the hull polygon: area + boundary points / 2 + 1)."""
    import cv2

    where = np.flatnonzero(border)
    lab = labels.ravel()[where].astype(np.int64)
    order = np.argsort(lab, kind="stable")
    rows, cols = np.divmod(where[order], labels.shape[1])
    pts = np.stack([cols, rows], axis=1).astype(np.int32)
    counts = np.bincount(lab, minlength=top + 1)
    starts = np.concatenate([[0], np.cumsum(counts)])
    hulls = [cv2.convexHull(pts[starts[i] : starts[i + 1]]).reshape(-1, 2) for i in ids]
    sizes = np.array([len(hh) for hh in hulls])
    xy = np.concatenate(hulls).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    nxt = np.arange(len(xy)) + 1
    nxt[first + sizes - 1] = first  # each polygon closes on its first vertex
    x, y, xn, yn = xy[:, 0], xy[:, 1], xy[nxt, 0], xy[nxt, 1]
    segment = np.repeat(np.arange(len(ids)), sizes)
    twice_area = np.abs(np.bincount(segment, weights=x * yn - xn * y, minlength=len(ids)))
    boundary = np.bincount(
        segment, weights=np.gcd(np.abs(xn - x), np.abs(yn - y)), minlength=len(ids)
    )
    return np.asarray(twice_area / 2 + boundary / 2 + 1)


def ellipse(
    var_r: np.ndarray, var_c: np.ndarray, cov: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Major and minor axis (px), eccentricity (0..1) and orientation (degrees, -90..90,
    scikit-image's convention) of the ellipses with these second central moments
    (px², one entry per object)."""
    half_trace = (var_r + var_c) / 2
    root = np.sqrt(((var_r - var_c) / 2) ** 2 + cov**2)
    l1, l2 = half_trace + root, np.maximum(half_trace - root, 0.0)
    major, minor = 4 * np.sqrt(l1), 4 * np.sqrt(l2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ecc = np.where(l1 > 0, np.sqrt(np.clip(1 - l2 / np.where(l1 > 0, l1, 1), 0, 1)), 0.0)
    theta = np.where(
        var_r - var_c == 0,
        np.where(cov > 0, np.pi / 4, -np.pi / 4),
        0.5 * np.arctan2(2 * cov, var_r - var_c),
    )
    orientation = np.degrees(theta) - 90.0
    orientation = np.where(orientation <= -90.0, orientation + 180.0, orientation)
    return major, minor, ecc, orientation


def bboxes(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(n, 4) int64 boxes ``(min_row, min_col, max_row, max_col)``, end-exclusive, of the
    objects ``ids`` (ascending labels present in ``labels``)."""
    from scipy import ndimage

    boxes = ndimage.find_objects(labels) if len(ids) else []
    out = np.zeros((len(ids), 4), np.int64)
    for i, lbl in enumerate(ids):
        box = boxes[lbl - 1]
        assert box is not None
        out[i] = (box[0].start, box[1].start, box[0].stop, box[1].stop)
    return out
