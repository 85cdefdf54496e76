"""Read what an image is from its header, and check that it decodes.

Sources are ``bytes`` or a local :class:`~pathlib.Path`; libvips reads either lazily, so a
probe of a 100 MP file looks at the header first and refuses decompression bombs before
any pixel is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyvips

from pixelmill.errors import CorruptImage, EmptyInput, ImageTooLarge, UnsupportedFormat
from pixelmill.imaging import gif
from pixelmill.imaging.formats import SNIFF_BYTES, ImageFormat, sniff
from pixelmill.imaging.pixel_size import pixel_size_um as read_pixel_size

ImageSource = bytes | Path

_BIT_DEPTH = {
    "uchar": 8,
    "char": 8,
    "ushort": 16,
    "short": 16,
    "uint": 32,
    "int": 32,
    "float": 32,
    "double": 64,
    "complex": 64,
    "dpcomplex": 128,
}


@dataclass(frozen=True)
class ImageInfo:
    """What an upload is. Sizes in pixels; ``pixel_size_um`` in micrometres or ``None``."""

    format: ImageFormat
    width: int
    height: int
    bands: int
    bit_depth: int
    pages: int
    orientation: int
    interpretation: str
    pixel_size_um: float | None = None
    exif: dict[str, str] = field(default_factory=dict)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def columns(self) -> dict[str, Any]:
        """The fields of an image record this describes (``format`` by its name; the
        EXIF tags apart, as only uploads keep them)."""
        return {
            "format": self.format.value,
            "width": self.width,
            "height": self.height,
            "bands": self.bands,
            "bit_depth": self.bit_depth,
            "pages": self.pages,
            "orientation": self.orientation,
            "interpretation": self.interpretation,
            "pixel_size_um": self.pixel_size_um,
        }


def read_head(source: ImageSource) -> bytes:
    if isinstance(source, bytes):
        return source[:SNIFF_BYTES]
    with source.open("rb") as fh:
        return fh.read(SNIFF_BYTES)


def sniff_source(source: ImageSource) -> ImageFormat:
    """The real format of ``source``; raises if it is empty or not an image we read."""
    head = read_head(source)
    if not head:
        raise EmptyInput("the upload is empty")
    fmt = sniff(head)
    if fmt is None:
        raise UnsupportedFormat(
            "the bytes are not JPEG, PNG, WebP, AVIF, TIFF or GIF",
            supported=[f.value for f in ImageFormat],
        )
    return fmt


def open_image(source: ImageSource, **options: Any) -> pyvips.Image:
    """Open lazily with libvips; only the header is read until pixels are asked for."""
    try:
        if isinstance(source, bytes):
            return pyvips.Image.new_from_buffer(source, "", **options)
        return pyvips.Image.new_from_file(str(source), **options)
    except pyvips.Error as exc:
        # libvips' words name the server's file: the edge logs them (the cause)
        raise CorruptImage("cannot read the image header: it is corrupt or truncated") from exc


def probe(
    source: ImageSource, *, max_pixels: int, verify: bool = True, max_slide_pixels: int = 0
) -> ImageInfo:
    """Describe ``source`` and, with ``verify``, prove that its pixels decode.

    Raises :class:`~pixelmill.errors.ImageTooLarge` from the header alone when the image
    has more than ``max_pixels`` pixels, so decompression bombs are never decoded —
    unless it is a tiled pyramidal TIFF (a whole slide) of at most ``max_slide_pixels``:
    it is read tile by tile from its levels, and ``verify`` decodes its smallest level.
    """
    fmt = sniff_source(source)
    image = open_image(source)
    pixels = image.width * image.height
    slide = pixels > max_pixels and _slide(source, fmt, pixels, max_slide_pixels)
    if pixels > max_pixels and not slide:
        raise ImageTooLarge(
            f"{image.width}x{image.height} = {pixels} pixels exceeds the limit of {max_pixels}",
            width=image.width,
            height=image.height,
            max_pixels=max_pixels,
        )
    if verify and slide:
        _verify_smallest_level(source)
    elif verify:
        verify_decodes(source, fmt, smallest_side=min(image.width, image.height))
    fields = set(image.get_fields())
    orientation = int(image.get("orientation")) if "orientation" in fields else 1
    pages = int(image.get("n-pages")) if "n-pages" in fields else 1
    exif = {
        name.removeprefix("exif-ifd0-").removeprefix("exif-"): _text(image.get(name))
        for name in fields
        if name.startswith("exif-ifd")
    }
    return ImageInfo(
        format=fmt,
        width=image.width,
        height=image.height,
        bands=image.bands,
        bit_depth=_BIT_DEPTH.get(str(image.format), 8),
        pages=pages,
        orientation=orientation,
        interpretation=str(image.interpretation),
        pixel_size_um=read_pixel_size(image, tiff=fmt is ImageFormat.TIFF),
        exif=exif,
    )


def _slide(source: ImageSource, fmt: ImageFormat, pixels: int, limit: int) -> bool:
    if fmt is not ImageFormat.TIFF or pixels > limit:
        return False
    from pixelmill.imaging.pyramid import is_pyramid

    return is_pyramid(source)


def _verify_smallest_level(source: ImageSource) -> None:
    """A whole slide: decoding all of it would take minutes, so decode its smallest
    level (a damaged tile elsewhere fails when that tile is read)."""
    from pixelmill.imaging.pyramid import PyramidReader

    try:
        PyramidReader(source).smallest().avg()
    except pyvips.Error as exc:
        raise CorruptImage("the image data is corrupt or truncated") from exc


def verify_decodes(source: ImageSource, fmt: ImageFormat, *, smallest_side: int = 8) -> None:
    """Decode every pixel of the first page once, failing on truncation or corruption.

    JPEG decodes with shrink-on-load (all entropy data is still read, so truncation is
    caught at a fraction of the cost); memory stays bounded by sequential access. The
    shrink is at most ``smallest_side`` (the header's shorter side): libvips refuses a
    shrink that leaves a side of 0 pixels ("bad dimensions"), so a JPEG under 8 px
    decodes at 1/4, 1/2 or full size.

    A GIF's every frame is checked to be whole (:func:`pixelmill.imaging.gif.truncated`):
    libvips decodes a frame cut short without failing, so a truncated animation would be
    stored with a frame count its renders do not show.
    """
    if fmt is ImageFormat.GIF and gif.truncated(source):
        raise CorruptImage("the image data is truncated: the GIF ends inside a frame's blocks")
    options: dict[str, Any] = {"access": "sequential", "fail_on": "truncated"}
    if fmt is ImageFormat.JPEG:
        options["shrink"] = next(s for s in (8, 4, 2, 1) if s <= max(smallest_side, 1))
    try:
        open_image(source, **options).avg()
    except pyvips.Error as exc:
        raise CorruptImage("the image data is corrupt or truncated") from exc


def _text(value: Any) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    # libvips renders EXIF as "value (human form, type, n components, n bytes)"
    return text.split(" (", 1)[0].strip()
