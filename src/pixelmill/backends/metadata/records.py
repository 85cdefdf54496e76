"""Plain records returned by the repositories (no ORM objects escape)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ImageRecord:
    id: str
    sha256: str
    format: str
    width: int
    height: int
    bands: int
    bit_depth: int
    pages: int
    orientation: int
    interpretation: str
    size_bytes: int
    pixel_size_um: float | None
    filename: str | None
    exif: dict[str, str]
    source: str
    job_id: str | None
    created_at: datetime
    owner_id: str = ""

    @property
    def storage_key(self) -> str:
        return f"originals/{self.sha256[:2]}/{self.sha256}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    user_id: str | None = None
