"""The image service's small parts: what a render answers, the storage quota ingest
checks, and how images get their ids and content hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pixelmill.errors import QuotaExceeded


class StoredQuota(Protocol):
    """What ingest needs of :class:`pixelmill.services.workspace.quotas.Quotas`."""

    def stored_limit(self, user_id: str) -> int | None: ...

    def denied(self, user_id: str, exc: QuotaExceeded) -> None: ...

    def check_room(self, user_id: str, adding: int) -> None: ...


@dataclass(frozen=True)
class Rendition:
    body: bytes
    media_type: str
    etag: str
    negotiated: bool
    cache_hit: bool


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def new_image_id() -> str:
    """A random id (128 bits): ids say nothing about the content, so nobody can test
    whether some file is stored by guessing its id."""
    return secrets.token_hex(16)
