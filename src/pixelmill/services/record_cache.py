"""The image records of the render path, cached in-process for a few seconds."""

from __future__ import annotations

import threading
import time

from cachetools import TTLCache

from pixelmill.backends.metadata.records import ImageRecord


class RecordCache:
    """A small LRU of image records for the render path, so a render does no DB query.

    Records are immutable once stored; only a delete ends one. This process drops its own
    entry on delete, other server processes keep serving theirs for at most ``ttl``
    seconds (a render of a deleted image also fails once its original is gone).
    """

    def __init__(self, size: int = 4096, ttl: float = 5.0) -> None:
        self._items: TTLCache[str, ImageRecord] = TTLCache(
            maxsize=size, ttl=ttl, timer=time.monotonic
        )
        self._lock = threading.Lock()

    def get(self, image_id: str) -> ImageRecord | None:
        with self._lock:
            return self._items.get(image_id)

    def put(self, record: ImageRecord) -> None:
        with self._lock:
            self._items[record.id] = record

    def drop(self, image_id: str) -> None:
        with self._lock:
            self._items.pop(image_id, None)
