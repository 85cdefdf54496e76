"""The records of the ML tables (datasets, models, versions, aliases, audit), as the
repositories in :mod:`~pixelmill.backends.metadata.models` return them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


def _json(record: Any) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(record).items()}


@dataclass(frozen=True)
class DatasetRecord:
    id: str
    sha256: str
    name: str
    task: str
    size_bytes: int
    items: int
    classes: list[str]
    split: dict[str, list[str]]
    summary: dict[str, Any]
    created_by: str | None
    created_at: datetime

    @property
    def storage_key(self) -> str:
        return f"datasets/{self.sha256[:2]}/{self.sha256}.zip"

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class ModelRecord:
    name: str
    task: str
    description: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class VersionRecord:
    id: str
    model: str
    version: int
    sha256: str
    size_bytes: int
    framework: str
    input_spec: dict[str, Any]
    train_config: dict[str, Any]
    dataset_sha256: str | None
    metrics: dict[str, Any]
    card: dict[str, Any]
    reference: dict[str, Any]
    created_by: str | None
    job_id: str | None
    created_at: datetime

    @property
    def storage_key(self) -> str:
        return f"models/{self.sha256[:2]}/{self.sha256}.onnx"

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"

    def to_json(self, *, full: bool = False) -> dict[str, Any]:
        body = _json(self)
        if not full:
            body.pop("reference")
            body["card"] = {k: v for k, v in self.card.items() if k not in ("reference", "history")}
        return body


@dataclass(frozen=True)
class AliasRecord:
    model: str
    alias: str
    version: int
    updated_by: str | None
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class AuditRecord:
    id: int
    model: str
    action: str
    alias: str | None
    from_version: int | None
    to_version: int | None
    actor: str | None
    note: str | None
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return _json(self)
