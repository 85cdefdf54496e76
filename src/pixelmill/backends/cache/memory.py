"""Per-process LRU cache bounded in bytes, with per-entry expiry."""

from __future__ import annotations

import threading
import time

from cachetools import TLRUCache


def _expires(_key: str, item: tuple[bytes, float], now: float) -> float:
    return now + item[1]


def _size(item: tuple[bytes, float]) -> int:
    return len(item[0])


class MemoryCache:
    #: in this process: a look-up takes microseconds, not worth a trace span
    in_process = True

    def __init__(self, max_bytes: int = 256 * 1024 * 1024, default_ttl: int = 86400) -> None:
        self.max_bytes = max_bytes
        self.default_ttl = default_ttl
        # value: (bytes, ttl seconds); least recently used evicted first once full
        self._items: TLRUCache[str, tuple[bytes, float]] = TLRUCache(
            maxsize=max_bytes, ttu=_expires, timer=time.monotonic, getsizeof=_size
        )
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        with self._lock:
            self._items.expire()
            return int(self._items.currsize)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._items.get(key)
        return None if item is None else item[0]

    def set(self, key: str, value: bytes, *, ttl: int | None = None) -> None:
        ttl = self.default_ttl if ttl is None else ttl
        with self._lock:
            # the old value goes even when the new one is not kept: never serve stale bytes
            self._items.pop(key, None)
            if len(value) > self.max_bytes or ttl <= 0:
                return
            self._items[key] = (value, float(ttl))

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None


class NullCache:
    in_process = True
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
