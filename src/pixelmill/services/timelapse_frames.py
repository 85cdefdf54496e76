"""Reading a stored time-lapse (a multi-page TIFF, or the frames of an animated GIF /
WebP, one page a frame) as one array, for the ``track`` job and time-lapse models."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from pixelmill.errors import ImageTooLarge, InvalidParameter
from pixelmill.imaging import pipeline

if TYPE_CHECKING:
    from pixelmill.backends.metadata.records import ImageRecord
    from pixelmill.services.images import ImageService


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
