"""Tracking objects through a time-lapse (no I/O: label stacks in, tables out).

===============  ==============================================================
module           what it holds
===============  ==============================================================
``objects``      the objects of every frame (centroid, area, mean intensity)
``link``         :func:`track`: frame-to-frame linking, gap closing, divisions
``tables``       the per-object and per-track tables (pyarrow)
``metrics``      tracking scores against true tracks (MOTA, IDF1, ID switches)
===============  ==============================================================

    >>> tracks = track(label_stack)                       # (T, H, W) instance labels
    >>> objects = object_table(tracks)                     # one row per object per frame
    >>> per_track = track_table(tracks, pixel_size_um=0.65, frame_interval_s=300)

scipy is imported inside the functions, so importing this package is cheap.
"""

from __future__ import annotations

from pixelmill.imaging.tracking.link import Tracks, auto_distance, track
from pixelmill.imaging.tracking.objects import FrameObjects, frame_objects
from pixelmill.imaging.tracking.tables import (
    OBJECT_COLUMNS,
    TRACK_COLUMNS,
    object_table,
    track_table,
)

__all__ = [
    "OBJECT_COLUMNS",
    "TRACK_COLUMNS",
    "FrameObjects",
    "Tracks",
    "auto_distance",
    "frame_objects",
    "object_table",
    "track",
    "track_table",
]
