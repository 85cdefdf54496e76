"""Reading a stored time-lapse (a multi-page TIFF, or the frames of an animated GIF /
WebP, one page a frame) as one array, and following its objects through the frames: what
the ``track`` job and time-lapse model predictions share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pixelmill.errors import ImageTooLarge, InvalidParameter
from pixelmill.imaging import pipeline

if TYPE_CHECKING:
    from pixelmill.backends.metadata.records import ImageRecord
    from pixelmill.imaging.tracking import Tracks
    from pixelmill.services.images import ImageService


class TrackingOptions(BaseModel):
    """How objects are followed through the frames (the ``track`` job's parameters and a
    time-lapse prediction's ``tracking`` share them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_distance: float | None = Field(
        None,
        gt=0,
        le=10_000,
        description="Longest link between frames, px (default: the objects' median diameter).",
    )
    max_gap: int = Field(1, ge=0, le=10, description="Frames an object may be missed.")
    divisions: bool = Field(True, description="Find divisions (a track ending in two).")
    min_daughter_frames: int = Field(
        2, ge=1, le=1000, description="Frames each daughter must last for a division."
    )
    pixel_size_um: float | None = Field(
        None, gt=0, le=1e6, description="Pixel size, µm (default: the image's metadata)."
    )
    frame_interval_s: float | None = Field(
        None, gt=0, le=1e9, description="Time between frames, s (for speeds in µm/min)."
    )


def grey_frames(frames: np.ndarray) -> np.ndarray:
    """(T, H, W[, bands]) frames as (T, H, W) intensities (the bands' mean)."""
    return frames if frames.ndim == 3 else frames.mean(axis=3, dtype=np.float32)


def track_frames(labels: np.ndarray, grey: np.ndarray, options: TrackingOptions) -> Tracks:
    """The objects of ``labels`` (T, H, W) followed through the frames as ``options`` say."""
    from pixelmill.imaging.tracking import track

    return track(
        labels,
        intensity=grey,
        max_distance=options.max_distance,
        max_gap=options.max_gap,
        divisions=options.divisions,
        min_daughter_frames=options.min_daughter_frames,
    )


def check_frames(record: ImageRecord, images: ImageService) -> None:
    """A single page (422), or more frames or pixels than an animation may have (413)."""
    if record.pages < 2:
        raise InvalidParameter(
            "tracking needs a time-lapse: a multi-page TIFF (or an animation), one page a "
            f"frame; image {record.id} has one page"
        )
    limit = images.settings
    pixels = record.pages * record.width * record.height
    if record.pages > limit.max_frames or pixels > limit.max_animation_pixels:
        raise ImageTooLarge(
            f"the time-lapse has {record.pages} frames, {pixels} pixels in all: more than "
            f"{limit.max_frames} frames or {limit.max_animation_pixels} pixels",
            frames=record.pages,
            max_frames=limit.max_frames,
        )


def frame(images: ImageService, record: ImageRecord, t: int) -> np.ndarray:
    """Frame ``t`` of ``record`` as an array (H, W) or (H, W, bands)."""
    from pixelmill.imaging.ops._analysis import to_array

    decoded = pipeline.run(
        images.source_of(record), [], images.context(record), pages=t, random_access=True
    )
    pixels, _ = to_array(decoded)
    return np.asarray(pixels)


def read_frames(
    images: ImageService,
    record: ImageRecord,
    on_frame: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Every frame of ``record`` (checked by :func:`check_frames`) as (T, H, W[, bands]);
    ``on_frame(t)`` before each (to report progress or stop)."""
    check_frames(record, images)
    out = []
    for t in range(record.pages):
        if on_frame is not None:
            on_frame(t)
        out.append(frame(images, record, t))
    return np.stack(out)
