"""Linking objects into tracks: frame to frame, then gap closing and divisions.

The two-step linear assignment of Jaqaman et al. ("Robust single-particle tracking in
live-cell time-lapse sequences", Nature Methods 2008), as TrackMate and laptrack do it:

1. **Frame to frame.** Objects of frame t are linked one-to-one to objects of frame
   t + 1 (cost: squared centroid distance, only within ``max_distance``); an object may
   stay unlinked (it ends, or the next one starts) at the cost of a link of
   ``max_distance``. This gives track segments.
2. **Gap closing and divisions**, one assignment over the segments: a segment's end may
   join a segment starting 2 .. ``max_gap`` + 1 frames later (a nucleus the
   segmentation missed for up to ``max_gap`` frames), and a segment's start at frame t
   may branch off an object of another segment at t - 1 that goes on at t (a division:
   the mother's track ends at t - 1, the two daughters start at t). Its cost is the
   squared distance from the mother to the daughters' midpoint (daughters move apart from
   where their mother was), and it needs that distance to be at most 0.35 x the
   daughters' separation (a nucleus appearing beside another that stays put is not a
   daughter), the two daughters' areas to add up to ``division_area_ratio`` times the
   mother's, and both daughters to last ``min_daughter_frames``; otherwise the new
   segment stays a track of its own. Merging (two tracks becoming one) is not modelled:
   nuclei do not fuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.tracking import _lap
from pixelmill.imaging.tracking.objects import FrameObjects, frame_objects


@dataclass(frozen=True)
class Tracks:
    """Tracked objects: ``track[i]`` is the track (1..N) of object ``i`` of ``objects``;
    ``parent[k]`` the track that track ``k`` divided from (absent for founders)."""

    objects: FrameObjects
    track: np.ndarray
    parent: dict[int, int] = field(default_factory=dict)
    max_distance: float = 0.0

    @property
    def n_tracks(self) -> int:
        return int(self.track.max()) if len(self.track) else 0

    def children(self) -> dict[int, list[int]]:
        """Each divided track's daughters, in track order."""
        out: dict[int, list[int]] = {}
        for child, mother in sorted(self.parent.items()):
            out.setdefault(mother, []).append(child)
        return out


def auto_distance(objects: FrameObjects) -> float:
    """The default ``max_distance``: the median equivalent diameter of all objects (a
    nucleus seldom moves more than its own diameter between two frames of a time-lapse
    meant for tracking)."""
    if len(objects) == 0:
        return 1.0
    return max(1.0, float(np.median(2.0 * np.sqrt(objects.area / np.pi))))


def track(
    labels: np.ndarray,
    *,
    intensity: np.ndarray | None = None,
    max_distance: float | None = None,
    max_gap: int = 1,
    divisions: bool = True,
    division_area_ratio: tuple[float, float] = (0.6, 1.6),
    min_daughter_frames: int = 2,
) -> Tracks:
    """Link the objects of a ``(T, H, W)`` stack of label images into tracks.

    ``max_distance`` (px, default :func:`auto_distance`) bounds a link between frames;
    ``max_gap`` frames may be missing inside a track (0: no gap closing). See the module
    docstring for the method. Returns :class:`Tracks`.

    Examples
    --------
    >>> stack = np.zeros((3, 20, 20), np.uint16)
    >>> for t in range(3): stack[t, 5:9, 2 + 3 * t:6 + 3 * t] = 7
    >>> track(stack).track.tolist()
    [1, 1, 1]
    """
    if max_gap < 0 or min_daughter_frames < 1:
        raise InvalidParameter("max_gap must be >= 0 and min_daughter_frames >= 1")
    if max_distance is not None and max_distance <= 0:
        raise InvalidParameter("max_distance must be positive")
    objects = frame_objects(labels, intensity)
    reach = max_distance if max_distance is not None else auto_distance(objects)
    nxt = _frame_links(objects, reach)
    split = np.full(len(objects), -1, np.int64)
    if objects.n_frames > 1:
        _close_gaps_and_divide(objects, nxt, split, reach, max_gap, divisions, division_area_ratio)
    ids, parent = _assemble(objects, nxt, split, min_daughter_frames)
    return Tracks(objects=objects, track=ids, parent=parent, max_distance=reach)


def _pairs_within(a: np.ndarray, b: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) with ``|a[i] - b[j]| <= reach``."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    from scipy.spatial import cKDTree

    found = cKDTree(a).sparse_distance_matrix(cKDTree(b), reach, output_type="ndarray")
    return found["i"].astype(np.int64), found["j"].astype(np.int64)


def _frame_links(objects: FrameObjects, reach: float) -> np.ndarray:
    """``nxt[i]``: the object of the next frame that object ``i`` links to, or -1."""
    nxt = np.full(len(objects), -1, np.int64)
    pos = objects.positions()
    alt = reach**2
    for t in range(objects.n_frames - 1):
        here, there = objects.in_frame(t), objects.in_frame(t + 1)
        i, j = _pairs_within(pos[here], pos[there], reach)
        cost = ((pos[here][i] - pos[there][j]) ** 2).sum(axis=1)
        links = _lap.solve(
            i,
            j,
            cost,
            n_sources=here.stop - here.start,
            n_targets=there.stop - there.start,
            source_alt=alt,
            target_alt=alt,
        )
        for a, b in links:
            nxt[here.start + a] = there.start + b
    return nxt


def _close_gaps_and_divide(
    objects: FrameObjects,
    nxt: np.ndarray,
    split: np.ndarray,
    reach: float,
    max_gap: int,
    divisions: bool,
    area_ratio: tuple[float, float],
) -> None:
    """The segment-level assignment; fills ``nxt`` (gap closings) and ``split`` (second
    daughters) in place."""
    has_prev = np.zeros(len(objects), bool)
    has_prev[nxt[nxt >= 0]] = True
    starts = np.flatnonzero(~has_prev & (objects.frame > 0))
    ends = np.flatnonzero(nxt < 0)
    pos = objects.positions()
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    costs: list[np.ndarray] = []
    if max_gap > 0 and len(ends) and len(starts):
        e, s = _pairs_within(pos[ends], pos[starts], reach)
        gap = objects.frame[starts[s]] - objects.frame[ends[e]]
        ok = (gap >= 2) & (gap <= max_gap + 1)
        e, s = e[ok], s[ok]
        rows.append(e)
        cols.append(s)
        costs.append(((pos[ends[e]] - pos[starts[s]]) ** 2).sum(axis=1))
    mothers = np.flatnonzero(nxt >= 0)
    if divisions and len(mothers) and len(starts):
        m, s = _pairs_within(pos[mothers], pos[starts], reach)
        ok = objects.frame[starts[s]] == objects.frame[mothers[m]] + 1
        m, s = m[ok], s[ok]
        mother, stays, new = mothers[m], nxt[mothers[m]], starts[s]
        ratio = (objects.area[stays] + objects.area[new]) / objects.area[mother]
        # daughters move apart from where their mother was: she lies near their midpoint
        off = np.hypot(*(pos[mother] - (pos[stays] + pos[new]) / 2).T)
        apart = np.hypot(*(pos[stays] - pos[new]).T)
        ok = (ratio >= area_ratio[0]) & (ratio <= area_ratio[1]) & (off <= 0.35 * apart)
        rows.append(len(ends) + m[ok])
        cols.append(s[ok])
        costs.append(off[ok] ** 2)
    if not rows:
        return
    links = _lap.solve(
        np.concatenate(rows),
        np.concatenate(cols),
        np.concatenate(costs),
        n_sources=len(ends) + len(mothers),
        n_targets=len(starts),
        source_alt=reach**2,
        target_alt=reach**2,
    )
    for r, c in links:
        if r < len(ends):
            nxt[ends[r]] = starts[c]
        else:
            split[mothers[r - len(ends)]] = starts[c]


def _assemble(
    objects: FrameObjects, nxt: np.ndarray, split: np.ndarray, min_daughter_frames: int
) -> tuple[np.ndarray, dict[int, int]]:
    """Track ids (1..N, by start frame, then row, then column) and parents; divisions
    with a daughter shorter than ``min_daughter_frames`` are undone first."""
    while True:
        members, parent_of = _walk(objects, nxt, split)
        short = {k for k, m in enumerate(members) if len(m) < min_daughter_frames}
        undone = False
        for k, mother in parent_of.items():
            last = members[mother][-1]
            if k in short and split[last] >= 0:
                split[last] = -1
                undone = True
        if not undone:
            break
    first = [m[0] for m in members]
    order = sorted(
        range(len(members)),
        key=lambda k: (objects.frame[first[k]], objects.row[first[k]], objects.col[first[k]]),
    )
    new_id = {old: new + 1 for new, old in enumerate(order)}
    ids = np.zeros(len(objects), np.int64)
    for k, m in enumerate(members):
        ids[m] = new_id[k]
    parent = {new_id[k]: new_id[mother] for k, mother in parent_of.items()}
    return ids, parent


def _walk(
    objects: FrameObjects, nxt: np.ndarray, split: np.ndarray
) -> tuple[list[list[int]], dict[int, int]]:
    """The tracks as lists of object indices, and each daughter track's mother track."""
    has_prev = np.zeros(len(objects), bool)
    has_prev[nxt[nxt >= 0]] = True
    has_prev[split[split >= 0]] = True
    members: list[list[int]] = []
    parent_of: dict[int, int] = {}
    todo: list[tuple[int, int]] = [(int(i), -1) for i in np.flatnonzero(~has_prev)]
    while todo:
        node, mother = todo.pop()
        k = len(members)
        chain = [node]
        while split[node] < 0 and nxt[node] >= 0:
            node = int(nxt[node])
            chain.append(node)
        members.append(chain)
        if mother >= 0:
            parent_of[k] = mother
        if split[node] >= 0:
            todo += [(int(nxt[node]), k), (int(split[node]), k)]
    return members, parent_of
