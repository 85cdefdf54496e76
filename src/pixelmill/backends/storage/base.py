"""The object storage contract: flat keys to immutable byte blobs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from pixelmill.errors import InvalidInput

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/]{0,1023}")


def check_key(key: str) -> str:
    """Refuse keys that could escape a folder or confuse a backend (``..``, ``//``, ``\\``)."""
    # fullmatch: ``re.match`` with ``$`` would let a trailing newline through
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidInput(f"invalid storage key {key!r}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidInput(f"invalid storage key {key!r}")
    return key


@runtime_checkable
class Storage(Protocol):
    """Object storage. Writes are atomic: a reader sees the whole object or none of it.

    Missing keys raise :class:`~pixelmill.errors.NotFound`; unreachable backends raise
    :class:`~pixelmill.errors.BackendUnavailable`.
    """

    def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store ``data`` under ``key``, replacing any previous object."""

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        """Store the file at ``path`` under ``key`` by streaming it (large uploads)."""

    def get(self, key: str) -> bytes:
        """The whole object."""

    def open(self, key: str) -> BinaryIO:
        """A readable stream of the object; close it when done."""

    def size(self, key: str) -> int:
        """Object size in bytes."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, in lexicographic order."""

    def local_path(self, key: str) -> Path | None:
        """A local file holding the object, when the backend has one (zero-copy decode)."""

    def ping(self) -> None:
        """Raise BackendUnavailable when the backend cannot be reached."""
