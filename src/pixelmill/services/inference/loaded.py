"""A model version loaded for serving, and what an inline prediction answers with."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache

from pixelmill.backends.metadata.models import VersionRecord
from pixelmill.ml.drift import DriftMonitor
from pixelmill.ml.onnx_model import OnnxModel


@dataclass
class LoadedModel:
    version: VersionRecord
    model: OnnxModel
    drift: DriftMonitor
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0
    predictions: int = 0
    errors: int = 0
    last_error: str | None = None
    #: the drift state after the last image the bookkeeper counted
    drift_state: dict[str, Any] = field(default_factory=dict)

    def health(self) -> dict[str, Any]:
        return {
            "model": self.version.model,
            "version": self.version.version,
            "sha256": self.version.sha256,
            "loaded": True,
            "ready": self.last_error is None or self.predictions > 0,
            "loaded_at": self.loaded_at,
            "load_seconds": round(self.load_seconds, 4),
            "predictions": self.predictions,
            "errors": self.errors,
            "last_error": self.last_error,
            "batching": None
            if self.model.batcher is None
            else {
                "max_batch": self.model.batcher.max_batch,
                "max_wait_ms": self.model.batcher.max_wait * 1000,
                "batches": self.model.batcher.batches,
                "items": self.model.batcher.items,
            },
            "drift": self.drift.state().to_dict(),
        }


@dataclass(frozen=True)
class InlineMask:
    """A predicted mask answered as the response body instead of being stored."""

    content: bytes
    media_type: str
    headers: dict[str, str]


class LoadedCache(LRUCache[str, LoadedModel]):
    """Loaded versions, least recently used evicted first. An evicted model is kept in
    ``take_evicted()`` for its owner to close outside its lock; requests that still hold
    it finish on it (a closed batcher runs their inputs in their own threads)."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self._evicted: list[LoadedModel] = []

    def popitem(self) -> tuple[str, LoadedModel]:
        key, evicted = super().popitem()
        self._evicted.append(evicted)
        return key, evicted

    def take_evicted(self) -> list[LoadedModel]:
        evicted, self._evicted = self._evicted, []
        return evicted
