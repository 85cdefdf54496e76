"""Reading a stored time-lapse (a multi-page TIFF, or the frames of an animated GIF /
WebP, one page a frame) as one array, and following its objects through the frames: what
the ``track`` job and time-lapse model predictions share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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
        None,
        gt=0,
        le=1e6,
        allow_inf_nan=False,
        description="Pixel size, µm (default: the image's metadata).",
    )
    frame_interval_s: float | None = Field(
        None,
        gt=0,
        le=1e9,
        allow_inf_nan=False,
        description="Time between frames, s (for speeds in µm/min).",
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
    """A single page or a pyramid (422), or more frames or pixels than an animation may
    have (413)."""
    if record.pages < 2:
        raise InvalidParameter(
            "tracking needs a time-lapse: a multi-page TIFF (or an animation), one page a "
            f"frame; image {record.id} has one page"
        )
    limit = images.settings
    pixels = record.pages * record.width * record.height
    if record.pages <= limit.max_frames:
        _check_not_pyramid(record, images)
    if record.pages > limit.max_frames or pixels > limit.max_animation_pixels:
        raise ImageTooLarge(
            f"the time-lapse has {record.pages} frames, {pixels} pixels in all: more than "
            f"{limit.max_frames} frames or {limit.max_animation_pixels} pixels",
            frames=record.pages,
            max_frames=limit.max_frames,
        )


def _check_not_pyramid(record: ImageRecord, images: ImageService) -> None:
    """422 when the pages of ``record`` differ in size: the levels of a pyramidal TIFF,
    not frames. A TIFF past ``max_pixels`` was only admitted as a whole slide (a
    pyramid); another's page headers are read, not its pixels."""
    if record.format != "tiff":  # GIF/WebP frames all have the animation's size
        return
    if record.width * record.height <= images.settings.max_pixels and not _pages_differ(
        images.source_of(record), record.pages
    ):
        return
    raise InvalidParameter(
        f"a pyramid's levels are not frames: the pages of image {record.id} differ in "
        "size (a pyramidal TIFF, whose pages are reduced copies of the first); tracking "
        "needs a time-lapse, one page a frame, every frame the same size"
    )


def _pages_differ(source: bytes | Path, pages: int) -> bool:
    """True when some page of ``source`` has another size than the first (headers
    only: libvips opens all pages as one image unless they differ)."""
    import pyvips

    def header(**options: int) -> pyvips.Image:
        if isinstance(source, bytes):
            return pyvips.Image.new_from_buffer(source, "", **options)
        return pyvips.Image.new_from_file(str(source), **options)

    try:
        header(n=-1)
        return False
    except pyvips.Error:  # pages of different sizes, or another fault the run reports
        try:
            first = header(page=0)
            return any(
                (page.width, page.height) != (first.width, first.height)
                for page in (header(page=t) for t in range(1, pages))
            )
        except pyvips.Error:
            return False


def check_same_size(frames: list[np.ndarray]) -> None:
    """422 (a permanent failure, never retried) when the frames differ in size."""
    first = frames[0].shape[:2]
    for t, pixels in enumerate(frames):
        if pixels.shape[:2] != first:
            raise InvalidParameter(
                f"frame {t} is {pixels.shape[1]}x{pixels.shape[0]} pixels, frame 0 "
                f"{first[1]}x{first[0]}: every frame of a time-lapse must have the same "
                "size (a pyramid's levels are not frames)"
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
    check_same_size(out)
    return np.stack(out)
