"""Which pages (frames) of a source a render reads, and what a render of a whole slide may ask."""

from __future__ import annotations

from typing import Literal

from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.errors import ImageTooLarge, InvalidParameter
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.render import RenderParams
from pixelmill.settings import RenderSettings


def animated(record: ImageRecord) -> bool:
    return record.pages > 1 and record.format in ("gif", "webp")


def pages_to_read(
    record: ImageRecord, p: RenderParams, fmt: ImageFormat, limit: RenderSettings
) -> int | Literal["all"] | None:
    """Which pages of the source a render reads: ``frame``/``page``, every frame of
    an animation kept in GIF or WebP (within the frame and pixel limits), or the first."""
    chosen = p.frame if p.frame is not None else p.page
    if chosen is not None:
        if chosen >= record.pages:
            name = "frame" if p.frame is not None else "page"
            raise InvalidParameter(
                f"{name}={chosen}: the image has {record.pages} (numbered from 0)"
            )
        return chosen if record.pages > 1 else None
    if not (animated(record) and fmt in (ImageFormat.GIF, ImageFormat.WEBP)):
        return None
    if p.analysis or p.compare:
        return None  # analysis overlays and comparisons show the first frame
    pixels = record.pages * record.width * record.height
    if record.pages > limit.max_frames or pixels > limit.max_animation_pixels:
        raise ImageTooLarge(
            f"the animation has {record.pages} frames, {pixels} pixels in all: more than "
            f"{limit.max_frames} frames or {limit.max_animation_pixels} pixels "
            "(ask for one with frame=N)",
            frames=record.pages,
            max_frames=limit.max_frames,
        )
    return "all"


def check_slide_render(record: ImageRecord, p: RenderParams, limit: RenderSettings) -> None:
    """A whole slide (a pyramid over ``render.max_pixels``) renders only at a size (``w``
    or ``h``: libvips reads the reduced level it needs); its full resolution is viewed
    through the deep-zoom tiles (``/v1/images/{id}/dzi.dzi``)."""
    pixels = record.width * record.height
    if pixels > limit.max_pixels and not (p.w or p.h):
        raise ImageTooLarge(
            f"the image is a whole slide of {pixels} pixels, more than {limit.max_pixels}: "
            "ask for a size (w or h), or read its deep-zoom tiles (dzi.dzi)",
            max_pixels=limit.max_pixels,
        )
