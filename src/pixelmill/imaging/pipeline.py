"""Run a validated pipeline of operations on an image source.

The first geometric step that can fuse with decoding (``resize``) is run as a
shrink-on-load thumbnail, so a 12 MP JPEG is never fully decoded for a 300 px output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import pyvips

from pixelmill.errors import CorruptImage, InvalidParameter, PixelmillError
from pixelmill.imaging.colour import IccMode, to_srgb
from pixelmill.imaging.gif import may_be_opaque, without_alpha
from pixelmill.imaging.intermediates import all_frames
from pixelmill.imaging.ops import OpContext, Step
from pixelmill.imaging.ops._analysis import labels_moved
from pixelmill.imaging.placement import Box, crop
from pixelmill.imaging.probe import ImageSource, open_image

#: the resolution libvips gives a new image (px/mm): none known
_DEFAULT_RES = 1.0


def run(
    source: ImageSource | pyvips.Image,
    steps: Sequence[Step],
    ctx: OpContext | None = None,
    *,
    auto_orient: bool = True,
    random_access: bool = False,
    icc: IccMode = "srgb",
    pages: int | Literal["all"] | None = None,
    region: Box | None = None,
) -> pyvips.Image:
    """Apply ``steps`` to ``source`` and return the (lazy) libvips result image.

    Pixels are computed when the result is encoded; libvips errors raised then are the
    caller's to translate (see :func:`pixelmill.imaging.encode.encode`).

    ``source`` is decoded top to bottom (sequential access) when no step needs random
    access; ``random_access=True`` asks for random access whatever the steps — for a
    caller that applies more steps to the result afterwards, which this call cannot see.

    A decoded ``source`` with an embedded ICC profile is converted to sRGB before the
    steps see it (:func:`pixelmill.imaging.colour.to_srgb`; ``icc="keep"`` keeps an RGB
    profile and its pixels). A ``pyvips.Image`` source is taken as it is.

    ``pages`` picks what a multi-page source gives: ``None`` its first page, a number
    that page (a TIFF page, an animation frame), ``"all"`` every frame of an animation,
    stacked top to bottom (libvips ``page-height``), each step applied frame by frame.

    ``region`` reads only that rectangle of the (upright) first page, in full-resolution
    pixels: the steps see the region as their whole image. A tiled file (a whole slide)
    then decodes only the tiles under it.
    """
    ctx = ctx or OpContext()
    remaining = list(steps)
    image: pyvips.Image | None = source if isinstance(source, pyvips.Image) else None
    try:
        if image is None and pages is not None:
            assert isinstance(source, (bytes, Path))
            if pages == "all":  # every frame: kept decoded for the next render, if any
                opened = _opener(source, n=-1)
                image = all_frames(opened, ctx.intermediates, ctx.source_id, -1)
            else:
                image = open_image(source, access="random", page=pages)
                image = without_alpha(image)  # an opaque GIF frame as RGB
                if auto_orient:
                    image = image.autorot()
        if image is None and region is not None:
            assert isinstance(source, (bytes, Path))
            image = open_image(source, access="random")
            image = crop(image.autorot() if auto_orient else image, region)
        if image is None and remaining and auto_orient:
            assert isinstance(source, (bytes, Path))
            image = _fused(source, remaining, ctx, random_access=random_access)
        if image is None:
            assert isinstance(source, (bytes, Path))
            streamable = not random_access and _streamable(remaining)
            image = open_image(source, access="sequential" if streamable else "random")
            if auto_orient:
                image = image.autorot()
        if not isinstance(source, pyvips.Image):
            image = to_srgb(image, mode=icc)
        if ctx.original is None:
            ctx.original = image
        for step in remaining:
            if _frame_height(image) < image.height:
                out = _per_frame(image, step, ctx)
            else:
                out = step.op.apply(image, step.params, ctx)
            image = keep_resolution(image, out)
            if step.op.reshapes:
                labels_moved(ctx)  # labels made before it no longer fit (measure refuses)
    except PixelmillError:
        raise
    except pyvips.Error as exc:
        # libvips' words (file paths, internals) are the cause, logged at the edge
        raise CorruptImage("cannot process the image: it is corrupt or truncated") from exc
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from exc
    return image


def keep_resolution(before: pyvips.Image, after: pyvips.Image) -> pyvips.Image:
    """``after`` with ``before``'s resolution (``xres``/``yres``, ``resolution-unit``)
    when a step lost it: a step computed in numpy makes a new image at libvips' default
    1 px/mm, which a TIFF would store as a 1000 µm pixel. A step that resamples in
    libvips (resize) sets its own resolution and is left alone."""
    lost = after.xres == _DEFAULT_RES and after.yres == _DEFAULT_RES
    if not lost or (before.xres, before.yres) == (_DEFAULT_RES, _DEFAULT_RES):
        return after
    out = after.copy(xres=before.xres, yres=before.yres)
    if before.get_typeof("resolution-unit"):
        out.set_type(pyvips.GValue.gstr_type, "resolution-unit", before.get("resolution-unit"))
    return out


def _fused(
    source: bytes | Path, steps: list[Step], ctx: OpContext, *, random_access: bool
) -> pyvips.Image | None:
    """The first step fused with decoding (a shrink-on-load resize), taken off ``steps``;
    ``None`` when it does not fuse. The decode runs top to bottom, so where a later
    step is geometric (a flip reads the last row first) or the caller asks for random
    access, the (bounded: max_side) result is computed into memory."""
    src: bytes | str = source if isinstance(source, bytes) else str(source)
    fused = steps[0].op.load(src, steps[0].params, ctx)
    if fused is None:
        return None
    steps.pop(0)
    return fused.copy_memory() if random_access or not _streamable(steps) else fused


def _opener(source: ImageSource, **options: int) -> Callable[[], pyvips.Image]:
    def frames() -> pyvips.Image:
        image = open_image(source, access="random", **options)
        # an opaque GIF as RGB (libvips decodes every GIF RGBA); a transparent first
        # frame rules the animation out without reading its pixels
        return without_alpha(image) if may_be_opaque(source) else image

    return frames


def _frame_height(image: pyvips.Image) -> int:
    if image.get_typeof("page-height"):  # a look-up, not a list of every field
        return int(image.get("page-height"))
    return int(image.height)


def _per_frame(image: pyvips.Image, step: Step, ctx: OpContext) -> pyvips.Image:
    """Apply ``step`` to each frame of an animation and stack the results again."""
    height = _frame_height(image)
    frames = [
        step.op.apply(image.crop(0, top, image.width, height), step.params, ctx)
        for top in range(0, image.height - height + 1, height)
    ]
    if any((f.width, f.height) != (frames[0].width, frames[0].height) for f in frames):
        # e.g. trim finds another border in each frame: no animation can hold them
        raise InvalidParameter(
            f"the {step.op.name} step gives frames of different sizes; take one with frame=N"
        )
    out = pyvips.Image.arrayjoin(frames, across=1).copy()
    out.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    return out


def _streamable(steps: Sequence[Step]) -> bool:
    # sequential (top-to-bottom) decoding is only safe when no step needs random access
    return not any(s.op.geometric for s in steps)
