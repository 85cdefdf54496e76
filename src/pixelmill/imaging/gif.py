"""Opaque GIFs: the alpha band libvips gives every GIF, dropped where it is all 255.

libvips' ``gifload`` decodes every GIF to four bands, RGBA, whether or not a pixel is
transparent. An alpha that is 255 everywhere still costs each render: ``thumbnail``
premultiplies and resizes in float, the PNG, WebP and AVIF encoders store the band, a
JPEG is flattened (docs/benchmarks.md, "Against sharp"). Dropping it changes no pixel.

Two checks, the cheap one first. :func:`may_be_opaque` reads the file's block structure
up to the first frame (no pixel decoded): a first frame that names a transparent colour
or leaves part of the screen undrawn is transparent somewhere, and a GIF whose first
frame is transparent is not opaque as an animation either. That only rules GIFs out;
:func:`without_alpha` proves opacity on the decoded pixels (the smallest alpha is 255),
so a GIF with any transparent pixel — a truncated frame the decoder leaves clear, a
colour index past the table, a later frame's disposal — keeps its alpha.

:func:`truncated` walks the same block structure over the whole file, for the upload's
check (:func:`pixelmill.imaging.probe.verify_decodes`): libvips decodes a GIF whose data
ends inside a frame without an error whatever ``fail_on`` says, and counts that frame
in ``n-pages`` though none of it (or only its top) is drawn.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import pyvips

from pixelmill.imaging.alpha import drop_opaque_alpha
from pixelmill.imaging.pixels import in_memory

_MAGIC = (b"GIF87a", b"GIF89a")

#: the largest first frame :func:`opaque_first_frame` decodes into memory to check it
#: (64 MiB of RGBA); a bigger GIF streams through ``thumbnail`` as before
_MEMORY_PIXELS = 4096 * 4096

#: bytes read from a file for :func:`may_be_opaque`: the header, a 768-byte colour
#: table and the extensions before the first frame fit in far less
_HEAD_BYTES = 16384


def may_be_opaque(source: bytes | str | Path) -> bool:
    """Whether ``source`` is a GIF whose first frame may be opaque: it draws the whole
    logical screen, names no transparent colour index and has a colour table. ``False``
    for anything else (not a GIF, transparent, or a header that does not parse)."""
    if isinstance(source, bytes):
        head = source[:_HEAD_BYTES]
    else:
        with open(source, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    try:
        return _first_frame_drawn_opaque(head)
    except IndexError:  # truncated, or extensions longer than the bytes read
        return False


def truncated(source: bytes | str | Path) -> bool:
    """Whether ``source``, a GIF, ends inside a block: in a frame's image data, its
    descriptor or colour table, or an extension. A GIF whose blocks are all whole counts
    as complete even without its trailer byte (as a PNG without its ``IEND`` chunk: every
    pixel is there). ``False`` for bytes that are not a GIF."""
    if isinstance(source, bytes):
        return _ends_inside_a_block(source)
    with open(source, "rb") as fh:
        if not fh.seek(0, 2):
            return False  # empty: nothing to map, not a GIF
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _ends_inside_a_block(data)


def _ends_inside_a_block(data: bytes | mmap.mmap) -> bool:
    if data[:6] not in _MAGIC:
        return False
    try:
        pos = 13 + (3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0)
        while pos < len(data) and data[pos] != 0x3B:  # the trailer
            if data[pos] == 0x2C:  # a frame: descriptor, colour table, LZW code size
                flags = data[pos + 9]
                pos += 11 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
            elif data[pos] == 0x21:  # an extension: its label
                pos += 2
            else:  # not a block of a GIF: no truncation of ours to tell
                return False
            while data[pos]:  # data sub-blocks, up to the empty one
                pos += data[pos] + 1
            pos += 1
    except IndexError:  # the data ran out inside a block
        return True
    return pos > len(data)  # the last block (a colour table, a sub-block) ran past the end


def without_alpha(image: pyvips.Image) -> pyvips.Image:
    """``image`` without its alpha band when it is a libvips GIF decode (every frame or
    one) whose alpha is 255 at every pixel; otherwise ``image`` unchanged.

    Reads every pixel of ``image``: decoded then (into the loader's memory for a
    random-access image), unless it is in memory already.
    """
    if image.bands != 4 or not _loader(image).startswith("gifload"):
        return image
    return drop_opaque_alpha(image)


def opaque_first_frame(source: bytes | str | Path) -> pyvips.Image | None:
    """The first frame of ``source`` decoded into memory as RGB when ``source`` is an
    opaque GIF (:func:`may_be_opaque`, then :func:`without_alpha`) of at most 16 MP;
    ``None`` otherwise: the caller decodes as before, so a GIF with transparency renders
    as it always did."""
    if not may_be_opaque(source):
        return None
    if isinstance(source, bytes):
        image = pyvips.Image.new_from_buffer(source, "", access="sequential")
    else:
        image = pyvips.Image.new_from_file(str(source), access="sequential")
    if image.width * image.height > _MEMORY_PIXELS:
        return None
    opaque = without_alpha(in_memory(image))
    return opaque if opaque.bands == 3 else None


def _loader(image: pyvips.Image) -> str:
    # gifload, gifload_buffer or gifload_source, by where the bytes came from; a look-up
    # of the one field (get_fields() lists them all: ~30x the cost)
    return str(image.get("vips-loader")) if image.get_typeof("vips-loader") else ""


def _first_frame_drawn_opaque(data: bytes) -> bool:
    if data[:6] not in _MAGIC:
        return False
    screen = (_u16(data, 6), _u16(data, 8))
    has_table = bool(data[10] & 0x80)
    pos = 13 + (3 * (2 << (data[10] & 7)) if has_table else 0)
    transparent = False
    while data[pos] == 0x21:  # extensions: label, then data sub-blocks
        if data[pos + 1] == 0xF9 and data[pos + 2] >= 4:  # graphic control
            transparent = bool(data[pos + 3] & 1)
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    if data[pos] != 0x2C:  # not an image descriptor: no first frame here
        return False
    origin = (_u16(data, pos + 1), _u16(data, pos + 3))
    size = (_u16(data, pos + 5), _u16(data, pos + 7))
    has_table = has_table or bool(data[pos + 9] & 0x80)
    return has_table and not transparent and origin == (0, 0) and size == screen


def _u16(data: bytes, pos: int) -> int:
    return data[pos] | data[pos + 1] << 8
