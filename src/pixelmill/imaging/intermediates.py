"""Decoded intermediates shared between renders of the same original.

A CDN asks an origin for each hot image in several sizes and formats. Every one of those
renders starts with the same work: decoding the original (shrunk on load where the
format allows). A :class:`Intermediates` store (a bounded, single-flight LRU the service
owns, :class:`pixelmill.services.intermediates.IntermediateCache`) keeps that decoded
intermediate, so the second to the n-th render only resize and encode.

What is kept, each keyed by the original's content hash (``OpContext.source_id``):

* ``("dct", d)``: a JPEG decoded shrunk by ``d`` (8, 4 or 2) in the DCT
  (:class:`pixelmill.imaging.jpeg.ReducedJpeg`, stored orientation and profile riding
  along), for renders needing the same shrink (pixel-equal to decoding afresh);
* ``("whole", page)``: a PNG, single-page TIFF or GIF decoded whole and upright into a
  libvips memory image (these formats have no shrink-on-load: every render decodes
  every pixel; an image whose alpha is opaque everywhere, as every GIF's libvips
  decode may be, kept without that band, :mod:`pixelmill.imaging.alpha`);
* ``("frames", n)``: every frame of an animation (``n`` frames), as the animated path
  opens it;
* ``("rendered", recipe)``: the result of a render's steps (:func:`rendered`), computed
  into memory, for the same request in another output format or quality. A CDN asks
  for one size of a source in WebP, AVIF and JPEG as browsers' ``Accept`` differ: the
  second and third requests only encode. Only steps whose ops are
  :attr:`~pixelmill.imaging.ops.Operation.pure` are kept; the recipe names the steps
  with their parameters and everything else the pipeline's pixels depend on.

Colour conversion (:func:`pixelmill.imaging.colour.to_srgb`) and every operation run
after the lookup, so one intermediate serves every colour and output choice. Nothing
here does I/O: the store is passed in through :class:`~pixelmill.imaging.ops.OpContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Protocol, TypeVar

import pyvips

from pixelmill.errors import CorruptImage
from pixelmill.imaging.alpha import drop_opaque_alpha
from pixelmill.imaging.encode import FAILED, watched
from pixelmill.imaging.pixels import in_memory

V = TypeVar("V")

#: the kind (a key's second part) of a render's kept result
RENDERED = "rendered"

#: formats decoded whole by every render (no shrink-on-load in libvips)
_WHOLE_MAGIC = (b"\x89PNG", b"GIF8", b"II*\x00", b"MM\x00*")


class Intermediates(Protocol):
    """A store of decoded intermediates (see the module docstring)."""

    def fetch(self, key: Hashable, make: Callable[[], tuple[V, int] | None]) -> V | None:
        """The value kept under ``key``; else ``make()``'s ``(value, bytes)``, kept when
        it fits. Concurrent fetches of one missing key share a single ``make()``."""
        ...

    def fits(self, nbytes: int) -> bool:
        """Whether an intermediate of ``nbytes`` may be kept at all."""
        ...


def whole_image(
    source: bytes | str | Path, store: Intermediates | None, source_id: str | None
) -> pyvips.Image | None:
    """The first page of ``source`` decoded whole and upright, from ``store`` (made and
    kept on a miss), when ``source`` is a PNG, a single-page TIFF or a GIF that fits the
    store; ``None`` otherwise (the caller decodes as usual, shrinking on load)."""
    if store is None or source_id is None or not store.fits(1):
        return None  # nothing can be kept: not even the header is worth opening
    head = source[:4] if isinstance(source, bytes) else _head(source)
    if not head.startswith(_WHOLE_MAGIC):
        return None

    def make() -> tuple[pyvips.Image, int] | None:
        image = _open(source)
        if image.get_n_pages() != 1 and not head.startswith(b"GIF8"):
            return None  # multi-page and pyramidal TIFFs: their own paths
        nbytes = image.width * image.height * image.bands * _sample_bytes(image)
        if not store.fits(nbytes):
            return None
        # an opaque alpha (an opaque GIF's, many PNGs') is not kept: RGB, 3/4 the memory
        # in memory without the sequential hint: no resize of it adds a line cache
        kept = in_memory(drop_opaque_alpha(image.autorot().copy_memory()))
        return kept, kept.width * kept.height * kept.bands * _sample_bytes(kept)

    return _own(store.fetch((source_id, "whole", 0), make))


def all_frames(
    open_frames: Callable[[], pyvips.Image],
    store: Intermediates | None,
    source_id: str | None,
    frames: int,
) -> pyvips.Image:
    """Every frame of an animation stacked (as ``open_frames()`` gives them), decoded
    into memory and kept in ``store`` when it fits; opened lazily without a store."""
    if store is None or source_id is None:
        return open_frames()
    return _in_memory(open_frames, store, (source_id, "frames", frames))


def rendered(
    run: Callable[[], pyvips.Image],
    store: Intermediates | None,
    source_id: str | None,
    recipe: str,
    stop: Callable[[], bool] | None = None,
) -> pyvips.Image:
    """``run()``'s image (a render's steps on its original), computed into memory and
    kept in ``store`` under ``recipe`` when it fits; lazy, as ``run()`` gives it,
    without a store or when it does not fit. ``stop`` may abandon the computation, as
    it may an encode's (:class:`CorruptImage`). Concurrent renders of one recipe share
    one computation; a second render of a kept recipe neither decodes nor resizes."""
    if store is None or source_id is None:
        return run()
    try:
        return _in_memory(run, store, (source_id, RENDERED, recipe), stop)
    except pyvips.Error as exc:  # stopped, or the source's data ran out
        raise CorruptImage(FAILED) from exc


def _in_memory(
    open_image: Callable[[], pyvips.Image],
    store: Intermediates,
    key: Hashable,
    stop: Callable[[], bool] | None = None,
) -> pyvips.Image:
    """``open_image()``'s image computed into memory and kept under ``key`` when it
    fits the store (concurrent callers share one computation); as opened otherwise."""
    opened: list[pyvips.Image] = []  # what make() opened: used as it is when not kept

    def make() -> tuple[pyvips.Image, int] | None:
        image = open_image()
        nbytes = image.width * image.height * image.bands * _sample_bytes(image)
        if not store.fits(nbytes):
            opened.append(image)
            return None
        if stop is not None:
            image = watched(image, stop)
        return image.copy_memory(), nbytes

    kept = _own(store.fetch(key, make))
    return kept or (opened[0] if opened else open_image())


def _own(kept: pyvips.Image | None) -> pyvips.Image | None:
    """A new image over the kept pixels, for one render: what the render attaches to
    its image (progress signals, metadata) must not stay on the shared one."""
    return None if kept is None else kept.copy()


def _open(source: bytes | str | Path) -> pyvips.Image:
    if isinstance(source, bytes):
        return pyvips.Image.new_from_buffer(source, "", access="sequential")
    return pyvips.Image.new_from_file(str(source), access="sequential")


def _head(path: str | Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(4)


#: bytes per sample of each libvips band format (the rest: int, uint, float)
_SAMPLE_BYTES = {
    "uchar": 1, "char": 1, "ushort": 2, "short": 2, "double": 8, "complex": 8, "dpcomplex": 16
}  # fmt: skip


def _sample_bytes(image: pyvips.Image) -> int:
    return _SAMPLE_BYTES.get(str(image.format), 4)
