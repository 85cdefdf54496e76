"""Limits on a dataset archive, checked before anything is decompressed or decoded.

A small zip can expand into gigabytes: a deflated member of zeros (about 1000:1), a PNG
whose header claims 20000 x 20000 pixels, an SVG named ``.png``, a member whose header
lies about its size, or millions of central-directory entries. Each of these is refused
from what the archive and image headers say, and member bytes are read streamed with a
cap, so memory stays bounded by the limits below, whatever the archive claims.

The limits are those of ``POST /v1/images`` (``server.max_upload_bytes`` per member,
``render.max_pixels`` per image, the formats :func:`pixelmill.imaging.formats.sniff`
knows) plus ``ml.max_dataset_bytes`` for the whole archive uncompressed. No I/O of its
own: bytes in, bytes out, or file objects the caller opened (an archive on disk, a
member copied into a file: :func:`copy_member`), so large archives never sit in memory.
:func:`unsafe_names` finds zip-slip paths. The service builds :class:`DatasetLimits`
from the settings.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import BinaryIO

from pixelmill.errors import CorruptImage, ImageTooLarge, InvalidDataset, PixelmillError
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.probe import ImageSource, probe

#: bytes read per step when a member is decompressed
_CHUNK = 1 << 20
#: room one central-directory entry may take (46 fixed bytes + name + extra fields);
#: bounds the memory :mod:`zipfile` spends on the directory before we can count it
_ENTRY_BYTES = 1024
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"


@dataclass(frozen=True)
class DatasetLimits:
    """``max_files`` members; ``max_member_bytes`` per member and ``max_total_bytes``
    for all members, uncompressed; ``max_image_pixels`` per image and
    ``max_total_pixels`` for all images (width x height, from the headers)."""

    max_files: int = 20_000
    max_member_bytes: int = 200 * 1024 * 1024
    max_total_bytes: int = 2 * 1024**3
    max_image_pixels: int = 100_000_000
    max_total_pixels: int = 2_000_000_000


def too_large(file: str, problem: str, **extra: object) -> ImageTooLarge:
    """A 413 naming the file, shaped like :class:`InvalidDataset` (``files``)."""
    return ImageTooLarge(
        f"the dataset is too large: {file}: {problem}",
        files=[{"file": file, "problem": problem}],
        **extra,
    )


def _central_directory_bytes(data: bytes | BinaryIO) -> int | None:
    """Size of the zip's central directory from its end record, or ``None`` if there is
    no end record (then :mod:`zipfile` refuses the archive itself). Of a file, reads
    only the end records and leaves it at its start."""
    if isinstance(data, bytes):
        total = len(data)

        def read_at(offset: int, n: int) -> bytes:
            return data[offset : offset + n]
    else:
        fh = data
        total = fh.seek(0, io.SEEK_END)

        def read_at(offset: int, n: int) -> bytes:
            fh.seek(offset)
            return fh.read(n)

    try:
        start = max(0, total - 65_557)
        tail = read_at(start, total - start)
        at = tail.rfind(_EOCD)
        if at < 0 or at + 22 > len(tail):
            return None
        size = int(struct.unpack_from("<I", tail, at + 12)[0])
        locator = at - 20
        if size == 0xFFFFFFFF and locator >= 0 and tail[locator : locator + 4] == _EOCD64_LOCATOR:
            record = int(struct.unpack_from("<Q", tail, locator + 8)[0])
            if record + 48 <= total:
                size = int(struct.unpack_from("<Q", read_at(record, 48), 40)[0])
        return size
    finally:
        if not isinstance(data, bytes):
            data.seek(0)


def unsafe_names(infos: list[zipfile.ZipInfo]) -> list[str]:
    """Member names that would land outside a folder they were extracted into (zip
    slip): absolute paths, drive letters, ``..`` parts, backslash separators."""
    bad = []
    for info in infos:
        name = info.filename
        posix, windows = PurePosixPath(name), PureWindowsPath(name)
        if (
            posix.is_absolute()
            or windows.is_absolute()
            or windows.drive
            or "\\" in name
            or ".." in posix.parts
            or "\0" in name
        ):
            bad.append(name)
    return bad


def open_archive(
    data: bytes | BinaryIO, limits: DatasetLimits
) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """The archive (bytes, or a seekable binary file the caller keeps open) and its
    file members (no folders, no hidden or ``__MACOSX`` files), after the member count
    and declared sizes are checked (413)."""
    directory = _central_directory_bytes(data)
    source: BinaryIO = io.BytesIO(data) if isinstance(data, bytes) else data
    if directory is not None and directory > limits.max_files * _ENTRY_BYTES:
        raise too_large(
            "*", f"the zip directory is {directory} bytes; more than {limits.max_files} files"
        )
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error):
        raise InvalidDataset("the dataset is not a zip archive", files=[]) from None
    infos = [
        i
        for i in archive.infolist()
        if not i.is_dir()
        and not any(p.startswith(".") or p == "__MACOSX" for p in PurePosixPath(i.filename).parts)
    ]
    if len(infos) > limits.max_files:
        raise too_large("*", f"{len(infos)} files; at most {limits.max_files}")
    total = 0
    for info in infos:
        if info.file_size > limits.max_member_bytes:
            raise too_large(
                info.filename,
                f"{info.file_size} bytes uncompressed; at most {limits.max_member_bytes}",
                max_bytes=limits.max_member_bytes,
            )
        total += info.file_size
    if total > limits.max_total_bytes:
        raise too_large(
            "*",
            f"{total} bytes uncompressed; at most {limits.max_total_bytes}",
            max_bytes=limits.max_total_bytes,
        )
    return archive, infos


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: DatasetLimits) -> bytes:
    """The bytes of one member, decompressed in chunks and never past its declared size
    nor ``max_member_bytes``; a member whose data disagrees with its header (size or
    CRC) is refused (422)."""
    cap = min(info.file_size, limits.max_member_bytes)
    out = bytearray()
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                out += chunk
                if len(out) > cap:
                    raise too_large(info.filename, f"more than {cap} bytes uncompressed")
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise InvalidDataset(
            f"the dataset is invalid: {info.filename}: its data does not match its zip header",
            files=[{"file": info.filename, "problem": "corrupt zip member (size or CRC)"}],
        ) from exc
    return bytes(out)


def copy_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: DatasetLimits, out: BinaryIO
) -> int:
    """Decompress one member into ``out`` (a file: the bytes never sit in memory), with
    the checks of :func:`read_member`; the number of bytes written."""
    cap = min(info.file_size, limits.max_member_bytes)
    written = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                written += len(chunk)
                if written > cap:
                    raise too_large(info.filename, f"more than {cap} bytes uncompressed")
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise InvalidDataset(
            f"the archive is invalid: {info.filename}: its data does not match its zip header",
            files=[{"file": info.filename, "problem": f"corrupt zip member ({exc})"}],
        ) from None
    return written


def check_image(name: str, blob: ImageSource, limits: DatasetLimits) -> tuple[int, str | None]:
    """Pixels of the image ``blob`` from its header, and the problem with it, if any.

    The format comes from the bytes (JPEG, PNG, WebP, AVIF, TIFF, GIF, as for
    ``POST /v1/images``), never from the name; an image over ``max_image_pixels`` is
    refused (413) before it is decoded."""
    try:
        info = probe(blob, max_pixels=limits.max_image_pixels, verify=False)
    except ImageTooLarge as exc:
        raise too_large(name, exc.detail, max_pixels=limits.max_image_pixels) from None
    except CorruptImage:
        return 0, "cannot be decoded as an image"
    except PixelmillError:
        supported = ", ".join(f.value for f in ImageFormat)
        return 0, f"cannot be decoded as an image: its bytes are not {supported}"
    return info.pixels, None
