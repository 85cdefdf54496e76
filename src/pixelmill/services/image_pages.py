"""Which pages (frames) of a source a render reads, and what a render of a whole slide may ask."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.errors import ImageTooLarge, InvalidParameter
from pixelmill.imaging import ops
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.ops import Step
from pixelmill.imaging.ops.resize import MAX_SIDE
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


#: render steps that read every pixel they are given and come before the render's resize
_WHOLE_IMAGE_STEPS = frozenset({"trim", "blur_faces", "pixelate_faces"})
#: a whole slide's reduced level for them: at most this many times the output's size
SLIDE_LEVEL_FACTOR = 4


def slide_steps(
    record: ImageRecord, p: RenderParams, steps: Sequence[Step], limit: RenderSettings
) -> list[Step]:
    """The steps a render runs on ``record``: ``steps``, checked by
    :func:`check_slide_render`; on a whole slide, ``trim``/``blur_faces``/
    ``pixelate_faces`` (which run before the render's resize) see a reduced level
    (shrink-on-load: libvips opens the pyramid level it needs) of at most
    :data:`SLIDE_LEVEL_FACTOR` times the output's size and ``max_pixels``, not all of
    level 0. With ``crop`` (whose box is in level-0 pixels) they are refused."""
    check_slide_render(record, p, limit)
    steps = list(steps)
    pixels = record.width * record.height
    at = next((i for i, s in enumerate(steps) if s.op.name == "resize"), None)
    if pixels <= limit.max_pixels or at is None:
        return steps
    whole = [s.op.name for s in steps[:at] if s.op.name in _WHOLE_IMAGE_STEPS]
    if not whole:
        return steps
    if p.crop is not None:
        raise ImageTooLarge(
            f"the image is a whole slide of {pixels} pixels: {', '.join(whole)} with crop "
            "would read its full resolution; render without crop, or crop a region first",
            max_pixels=limit.max_pixels,
        )
    size = steps[at].params
    ratios = [
        v / side
        for v, side in (
            (getattr(size, "width", None), record.width),
            (getattr(size, "min_width", None), record.width),
            (getattr(size, "height", None), record.height),
            (getattr(size, "min_height", None), record.height),
        )
        if v is not None
    ]
    scale = min(
        1.0,
        SLIDE_LEVEL_FACTOR * max(ratios, default=1.0),
        math.sqrt(limit.max_pixels / pixels),
    )
    w = min(MAX_SIDE, max(1, math.ceil(record.width * scale)))
    h = min(MAX_SIDE, max(1, math.ceil(record.height * scale)))
    level = ops.parse_step({"op": "resize", "width": w, "height": h, "fit": "inside"})
    return [level, *steps]
