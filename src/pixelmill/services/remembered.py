"""Answers a serving process remembers for a short time, forgotten at any local write.

What a model reference names (:mod:`.inference.resolution`), who may predict with a
model (:mod:`.inference.grants`) and whether a job's owner is still an active account
(:mod:`.workspace.run_rights`, once per task) each cost metadata lookups on every
prediction or task. :class:`Remembered`
keeps an answer for ``ttl`` seconds and drops every one as soon as ``version()`` moves
(the repositories' ``changes`` counts, which this process's own writes move), so a write
made here is seen by the very next request and one made by another process within the
TTL. An answer computed while a write happened is not kept: it may already be stale.
Errors (a 404, a 403) are never kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Remembered(Generic[K, V]):
    """``compute()`` per key, kept ``ttl`` seconds (0: never kept), at most ``limit``."""

    def __init__(
        self,
        ttl: float,
        version: Callable[[], Hashable],
        limit: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.version = version
        self.limit = limit
        self.clock = clock
        self._items: dict[K, tuple[float, V]] = {}
        self._seen = version()
        self._lock = threading.Lock()

    def get(self, key: K, compute: Callable[[], V]) -> V:
        if self.ttl <= 0:
            return compute()
        seen = self.version()
        now = self.clock()
        with self._lock:
            if seen != self._seen:
                self._items.clear()
                self._seen = seen
            hit = self._items.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = compute()
        with self._lock:
            # a write while we looked means the answer may already be stale: not kept
            if self.version() == seen == self._seen:
                if len(self._items) >= self.limit:
                    self._items.clear()
                self._items[key] = (now + self.ttl, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


__all__ = ["Remembered"]
