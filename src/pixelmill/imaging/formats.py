"""Image formats: sniffed from the bytes themselves, never from a name or header."""

from __future__ import annotations

from enum import StrEnum


class ImageFormat(StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    AVIF = "avif"
    TIFF = "tiff"
    GIF = "gif"

    @property
    def mime(self) -> str:
        return _MIME[self]

    @property
    def suffix(self) -> str:
        """The libvips buffer-save suffix for this format."""
        return _SUFFIX[self]


_MIME = {
    ImageFormat.JPEG: "image/jpeg",
    ImageFormat.PNG: "image/png",
    ImageFormat.WEBP: "image/webp",
    ImageFormat.AVIF: "image/avif",
    ImageFormat.TIFF: "image/tiff",
    ImageFormat.GIF: "image/gif",
}
_SUFFIX = {
    ImageFormat.JPEG: ".jpg",
    ImageFormat.PNG: ".png",
    ImageFormat.WEBP: ".webp",
    ImageFormat.AVIF: ".avif",
    ImageFormat.TIFF: ".tif",
    ImageFormat.GIF: ".gif",
}

#: Formats a render may produce.
OUTPUT_FORMATS = (
    ImageFormat.JPEG,
    ImageFormat.PNG,
    ImageFormat.WEBP,
    ImageFormat.AVIF,
    ImageFormat.TIFF,
)

#: How many leading bytes :func:`sniff` needs.
SNIFF_BYTES = 32

_AVIF_BRANDS = {b"avif", b"avis"}


def sniff(head: bytes) -> ImageFormat | None:
    """Return the format whose signature starts ``head``, or ``None``.

    ``head`` should hold at least :data:`SNIFF_BYTES` bytes of the file.

    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(24))
    <ImageFormat.PNG: 'png'>
    """
    if head.startswith(b"\xff\xd8\xff"):
        return ImageFormat.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageFormat.PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ImageFormat.GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ImageFormat.WEBP
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return ImageFormat.TIFF
    if head[4:8] == b"ftyp":
        box_size = int.from_bytes(head[:4], "big")
        brands = {head[8:12]}
        # compatible brands follow major brand + minor version
        end = min(box_size, len(head))
        brands.update(head[i : i + 4] for i in range(16, end - 3, 4))
        if brands & _AVIF_BRANDS:
            return ImageFormat.AVIF
    return None


def parse_format(name: str) -> ImageFormat:
    """Parse a user-given output format name (``jpg`` is accepted for ``jpeg``)."""
    key = name.strip().lower()
    key = {"jpg": "jpeg", "tif": "tiff"}.get(key, key)
    return ImageFormat(key)
