"""16-bit sources for resize: libvips ``thumbnail`` makes every image 8-bit sRGB, so a
16-bit PNG or TIFF that should stay 16-bit (``OpContext.keep_16_bit``) is opened here and
resized by libvips ``resize`` in float instead."""

from __future__ import annotations

import pyvips


class DeepImage:
    """A 16-bit source, upright, resized by libvips ``resize`` (``thumbnail`` would make
    it 8-bit sRGB first). Same interface as :class:`ReducedJpeg`."""

    __slots__ = ("_image", "size")

    def __init__(self, image: pyvips.Image) -> None:
        self._image = image
        self.size = (image.width, image.height)

    def resized(self, width: int, height: int) -> pyvips.Image:
        sw, sh = self.size
        if (width, height) == (sw, sh):
            return self._image
        # in float: libvips' 16-bit fixed-point kernels darken by up to ~0.2 %; alpha
        # premultiplied, as thumbnail does, so transparent pixels leave no fringe
        image = self._image
        alpha = image.hasalpha()
        image = image.premultiply(max_alpha=65535) if alpha else image.cast("float")
        scaled = image.resize(width / sw, vscale=height / sh)
        if alpha:
            scaled = scaled.unpremultiply(max_alpha=65535)
        return scaled.rint().cast("ushort")

    def image(self) -> pyvips.Image:
        return self._image


def deep_image(source: bytes | str) -> DeepImage | None:
    """The source opened for a 16-bit resize when it is 16-bit, else ``None``."""
    if isinstance(source, bytes):
        head = source[:32]
    else:
        with open(source, "rb") as fh:
            head = fh.read(32)
    if not may_be_deep(head):
        return None
    if isinstance(source, bytes):
        image = pyvips.Image.new_from_buffer(source, "", access="sequential")
    else:
        image = pyvips.Image.new_from_file(source, access="sequential")
    if str(image.format) != "ushort":
        return None
    return DeepImage(image.autorot())


def may_be_deep(head: bytes) -> bool:
    """Whether the first bytes allow a 16-bit image: a 16-bit PNG (IHDR bit depth) or a
    TIFF. Other formats are left to ``thumbnail`` without a header parse (a 10/12-bit
    AVIF then comes out 8-bit)."""
    if head.startswith(b"\x89PNG"):
        return len(head) > 24 and head[24] == 16
    return head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
