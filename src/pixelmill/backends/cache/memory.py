"""Per-process LRU cache bounded in bytes, with per-entry expiry."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict


class MemoryCache:
    def __init__(self, max_bytes: int = 256 * 1024 * 1024, default_ttl: int = 86400) -> None:
        self.max_bytes = max_bytes
        self.default_ttl = default_ttl
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            value, expires = item
            if expires < time.monotonic():
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return value

    def set(self, key: str, value: bytes, *, ttl: int | None = None) -> None:
        ttl = self.default_ttl if ttl is None else ttl
        expires = time.monotonic() + ttl
        with self._lock:
            # the old value goes even when the new one is not kept: never serve stale bytes
            if key in self._items:
                self._drop(key)
            if len(value) > self.max_bytes or ttl <= 0:
                return
            self._items[key] = (value, expires)
            self._bytes += len(value)
            while self._bytes > self.max_bytes:
                oldest = next(iter(self._items))
                self._drop(oldest)

    def delete(self, key: str) -> None:
        with self._lock:
            if key in self._items:
                self._drop(key)

    def _drop(self, key: str) -> None:
        value, _ = self._items.pop(key)
        self._bytes -= len(value)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None


class NullCache:
    """A cache that keeps nothing (``none://``)."""

    def get(self, key: str) -> bytes | None:
        return None

    def set(self, key: str, value: bytes, *, ttl: int | None = None) -> None:
        return None

    def delete(self, key: str) -> None:
        return None

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None
