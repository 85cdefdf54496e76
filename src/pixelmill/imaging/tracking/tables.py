"""The two tables of a tracking: one row per object per frame, one row per track.

Units: positions and distances in px, areas in px², speeds in px per frame; with
``pixel_size_um`` also µm and µm², and with both it and ``frame_interval_s`` speeds in
µm per minute. Unknown units give null columns, never guessed values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pixelmill.imaging.tracking.link import Tracks

if TYPE_CHECKING:
    import pyarrow as pa

#: the per-object table's columns, in order
OBJECT_COLUMNS = (
    "track_id",
    "frame",
    "label",
    "centroid_row",
    "centroid_col",
    "area_px",
    "area_um2",
    "mean_intensity",
    "parent_track_id",
)

#: the per-track table's columns, in order
TRACK_COLUMNS = (
    "track_id",
    "parent_track_id",
    "children",
    "generation",
    "start_frame",
    "end_frame",
    "frames",
    "missing_frames",
    "fate",
    "path_length_px",
    "net_displacement_px",
    "straightness",
    "mean_speed_px_per_frame",
    "mean_speed_um_per_min",
    "area_start_px",
    "area_end_px",
    "area_mean_px",
    "area_change",
)


def object_table(tracks: Tracks, *, pixel_size_um: float | None = None) -> pa.Table:
    """One row per object per frame, ordered by track then frame.

    ``mean_intensity`` is in the intensity frames' raw units (null without them);
    ``parent_track_id`` is the track this object's track divided from (null for founders).
    """
    import pyarrow as pa

    objs = tracks.objects
    order = np.lexsort((objs.frame, tracks.track))
    parent = [tracks.parent.get(int(k)) for k in tracks.track[order]]
    area = objs.area[order]
    mean = objs.intensity[order]
    columns: dict[str, Any] = {
        "track_id": pa.array(tracks.track[order], pa.int64()),
        "frame": pa.array(objs.frame[order], pa.int64()),
        "label": pa.array(objs.label[order], pa.int64()),
        "centroid_row": pa.array(objs.row[order], pa.float64()),
        "centroid_col": pa.array(objs.col[order], pa.float64()),
        "area_px": pa.array(area.astype(np.int64), pa.int64()),
        "area_um2": _scaled(area, pixel_size_um, 2),
        "mean_intensity": pa.array(mean, pa.float64(), mask=np.isnan(mean)),
        "parent_track_id": pa.array(parent, pa.int64()),
    }
    return pa.table(columns)


def track_table(
    tracks: Tracks,
    *,
    pixel_size_um: float | None = None,
    frame_interval_s: float | None = None,
) -> pa.Table:
    """One row per track (see ``TRACK_COLUMNS``).

    ``frames`` counts the frames the object was seen in, ``missing_frames`` the closed
    gaps; ``fate`` is ``divided``, ``last_frame`` (still there at the end of the
    sequence) or ``lost`` (left the field or was no longer found). Path length sums the
    steps between successive observations; straightness = net displacement / path length
    (1 = straight, null when it did not move); the mean speed is path length / (end frame
    - start frame); ``area_change`` = last area / first area - 1.
    """
    import pyarrow as pa

    objs = tracks.objects
    children = tracks.children()
    last_frame = objs.n_frames - 1
    rows: dict[str, list[Any]] = {name: [] for name in TRACK_COLUMNS}
    order = np.lexsort((objs.frame, tracks.track))
    bounds = np.searchsorted(tracks.track[order], np.arange(1, tracks.n_tracks + 2))
    for k in range(1, tracks.n_tracks + 1):
        idx = order[bounds[k - 1] : bounds[k]]
        frames = objs.frame[idx]
        steps = np.hypot(np.diff(objs.row[idx]), np.diff(objs.col[idx]))
        path = float(steps.sum())
        net = float(
            np.hypot(objs.row[idx[-1]] - objs.row[idx[0]], objs.col[idx[-1]] - objs.col[idx[0]])
        )
        span = int(frames[-1] - frames[0])
        fate = "divided" if k in children else "last_frame" if frames[-1] == last_frame else "lost"
        speed = path / span if span else None
        values = {
            "track_id": k,
            "parent_track_id": tracks.parent.get(k),
            "children": " ".join(str(c) for c in children.get(k, [])) or None,
            "generation": _generation(tracks.parent, k),
            "start_frame": int(frames[0]),
            "end_frame": int(frames[-1]),
            "frames": len(idx),
            "missing_frames": span + 1 - len(idx),
            "fate": fate,
            "path_length_px": path,
            "net_displacement_px": net,
            "straightness": net / path if path > 0 else None,
            "mean_speed_px_per_frame": speed,
            "mean_speed_um_per_min": _speed_um_per_min(speed, pixel_size_um, frame_interval_s),
            "area_start_px": int(objs.area[idx[0]]),
            "area_end_px": int(objs.area[idx[-1]]),
            "area_mean_px": float(objs.area[idx].mean()),
            "area_change": float(objs.area[idx[-1]] / objs.area[idx[0]] - 1.0),
        }
        for name in TRACK_COLUMNS:
            rows[name].append(values[name])
    types = _track_types()
    return pa.table({name: pa.array(rows[name], types[name]) for name in TRACK_COLUMNS})


def _track_types() -> dict[str, pa.DataType]:
    import pyarrow as pa

    ints = ("track_id", "parent_track_id", "generation", "start_frame", "end_frame", "frames")
    types = {name: pa.float64() for name in TRACK_COLUMNS}
    types.update({name: pa.int64() for name in (*ints, "missing_frames")})
    types.update({"area_start_px": pa.int64(), "area_end_px": pa.int64()})
    types.update({"children": pa.string(), "fate": pa.string()})
    return types


def _generation(parent: dict[int, int], k: int) -> int:
    """0 for a founder, 1 for its daughters, ..."""
    depth = 0
    while k in parent:
        k = parent[k]
        depth += 1
    return depth


def _speed_um_per_min(
    speed: float | None, pixel_size_um: float | None, frame_interval_s: float | None
) -> float | None:
    if speed is None or not pixel_size_um or not frame_interval_s:
        return None
    return speed * pixel_size_um / (frame_interval_s / 60.0)


def _scaled(values: np.ndarray, pixel_size_um: float | None, power: int) -> pa.Array:
    import pyarrow as pa

    if not pixel_size_um:
        return pa.nulls(len(values), pa.float64())
    return pa.array(values * pixel_size_um**power, pa.float64())
