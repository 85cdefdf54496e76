"""The objects of every frame of a time-lapse: one row per label per frame.

A time-lapse is a stack of instance label images, frames x rows x columns (``(T, H, W)``,
0 = background, any positive integer ids, ids need not agree between frames), optionally
with the intensity frames they were segmented from (``(T, H, W)`` or ``(T, H, W, C)``;
channels are averaged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pixelmill.errors import InvalidParameter


@dataclass(frozen=True)
class FrameObjects:
    """Every object of every frame, ordered by frame then label (parallel arrays).

    ``row``/``col`` are the centroid in pixels, ``area`` in pixels², ``intensity`` the
    mean of the intensity frames inside the object (NaN without intensity frames).
    ``offsets[t]:offsets[t + 1]`` are the objects of frame ``t``.
    """

    frame: np.ndarray
    label: np.ndarray
    row: np.ndarray
    col: np.ndarray
    area: np.ndarray
    intensity: np.ndarray
    offsets: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.offsets) - 1

    def __len__(self) -> int:
        return len(self.frame)

    def in_frame(self, t: int) -> slice:
        """The objects of frame ``t`` (a slice of the arrays)."""
        return slice(int(self.offsets[t]), int(self.offsets[t + 1]))

    def positions(self) -> np.ndarray:
        """``(n, 2)`` centroids, rows then columns, px."""
        return np.column_stack([self.row, self.col])


def check_stack(labels: np.ndarray, intensity: np.ndarray | None = None) -> None:
    """Raise :class:`~pixelmill.errors.InvalidParameter` (422) unless ``labels`` is a
    ``(T, H, W)`` integer stack and ``intensity`` (if given) has the same frames."""
    if not isinstance(labels, np.ndarray) or labels.ndim != 3:
        raise InvalidParameter("tracking needs a stack of label images, frames x rows x cols")
    if labels.dtype.kind not in "ui":
        raise InvalidParameter(f"label images must be integers, not {labels.dtype}")
    if labels.shape[0] == 0:
        raise InvalidParameter("tracking needs at least one frame")
    if intensity is not None and (
        intensity.ndim not in (3, 4) or intensity.shape[:3] != labels.shape
    ):
        raise InvalidParameter(
            f"intensity frames {intensity.shape} do not match the label images {labels.shape}"
        )


def frame_objects(labels: np.ndarray, intensity: np.ndarray | None = None) -> FrameObjects:
    """The objects of each frame of ``labels`` with centroid, area and mean intensity.

    Examples
    --------
    >>> stack = np.zeros((2, 4, 4), np.uint16); stack[0, :2, :2] = 3; stack[1, 2:, 2:] = 1
    >>> objs = frame_objects(stack)
    >>> objs.frame.tolist(), objs.row.tolist(), objs.area.tolist()
    ([0, 1], [0.5, 2.5], [4.0, 4.0])
    """
    check_stack(labels, intensity)
    grey = None
    if intensity is not None:
        grey = intensity.mean(axis=3) if intensity.ndim == 4 else intensity
    rows_grid, cols_grid = np.indices(labels.shape[1:], dtype=np.float64)
    parts: list[tuple[np.ndarray, ...]] = []
    offsets = [0]
    for t in range(labels.shape[0]):
        flat = labels[t].ravel()
        top = int(flat.max(initial=0))
        if top <= 4 * flat.size:  # compact ids (the usual 1..N): count without sorting
            ids, inverse = np.arange(top + 1), flat.astype(np.intp)
        else:
            ids, inverse = np.unique(flat, return_inverse=True)
        n = len(ids)
        area = np.bincount(inverse, minlength=n).astype(np.float64)
        keep = (ids > 0) & (area > 0)
        row = np.bincount(inverse, rows_grid.ravel(), n)[keep] / area[keep]
        col = np.bincount(inverse, cols_grid.ravel(), n)[keep] / area[keep]
        if grey is not None:
            total = np.bincount(inverse, grey[t].ravel().astype(np.float64), n)
            mean = total[keep] / area[keep]
        else:
            mean = np.full(int(keep.sum()), np.nan)
        frame = np.full(int(keep.sum()), t, np.int64)
        parts.append((frame, ids[keep].astype(np.int64), row, col, area[keep], mean))
        offsets.append(offsets[-1] + len(frame))
    frame, label, row, col, area, mean = (np.concatenate([p[i] for p in parts]) for i in range(6))
    return FrameObjects(
        frame=frame,
        label=label,
        row=row,
        col=col,
        area=area,
        intensity=mean,
        offsets=np.asarray(offsets, np.int64),
    )
