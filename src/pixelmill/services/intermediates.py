"""The render path's in-process store of decoded intermediates: an LRU bounded by bytes,
with single-flight misses (see :mod:`pixelmill.imaging.intermediates` for what is kept).

Per process, like the record cache: a CDN origin's hot originals are decoded once per
process for as long as they stay among the most recently used ``max_bytes``.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

from pixelmill.imaging.intermediates import RENDERED
from pixelmill.observability import metrics

V = TypeVar("V")


class _Flight:
    """A miss being made by one thread while others wait for its value."""

    __slots__ = ("done", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None


#: kinds (a key's second part) whose kept bytes may take at most this share of the
#: budget, the oldest of the kind out first: rendered results only pay when the same
#: request comes in another format, so they must not push out more than a quarter of
#: the decoded originals, which pay for every size
SHARES = {RENDERED: 0.25}


def _kind(key: Hashable) -> str:
    return str(key[1]) if isinstance(key, tuple) and len(key) > 1 else ""


class IntermediateCache:
    """Decoded intermediates by key, least recently used evicted first so that the kept
    ones add up to at most ``max_bytes``; ``max_bytes=0`` keeps nothing (but concurrent
    misses of one key still share one decode).

    Metrics: ``pixelmill_render_intermediate_total{result=hit|miss|shared}`` (``shared``:
    waited for another request's decode).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()
        self.nbytes = 0
        self._kind_bytes: Counter[str] = Counter()

    def fits(self, nbytes: int) -> bool:
        # one intermediate may take at most half the budget: a single huge original
        # must not flush every hot one
        return 0 < nbytes <= self.max_bytes // 2

    def fetch(self, key: Hashable, make: Callable[[], tuple[V, int] | None]) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            flight = self._flights.get(key)
            leader = item is None and flight is None
            if leader:
                flight = self._flights[key] = _Flight()
        if item is not None:
            metrics.RENDER_INTERMEDIATES.labels("hit").inc()
            return cast(V, item[0])
        assert flight is not None
        if not leader:
            flight.done.wait()
            metrics.RENDER_INTERMEDIATES.labels("shared").inc()
            return cast(V | None, flight.value)
        metrics.RENDER_INTERMEDIATES.labels("miss").inc()
        made: tuple[V, int] | None = None
        try:
            made = make()
        finally:
            flight.value = None if made is None else made[0]
            with self._lock:
                del self._flights[key]
                if made is not None and self.fits(made[1]):
                    self._put(key, made)
            flight.done.set()
        return None if made is None else made[0]

    def _put(self, key: Hashable, item: tuple[Any, int]) -> None:
        """Keep ``item`` and evict the least recently used until within budget, and
        within its kind's share (locked)."""
        kind = _kind(key)
        cap = SHARES.get(kind, 1.0) * self.max_bytes
        if item[1] > cap:
            return
        self._drop(key)
        self._items[key] = item
        self.nbytes += item[1]
        self._kind_bytes[kind] += item[1]
        while self._kind_bytes[kind] > cap:
            self._drop(next(k for k in self._items if _kind(k) == kind))
        while self.nbytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    def _drop(self, key: Hashable) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.nbytes -= old[1]
            self._kind_bytes[_kind(key)] -= old[1]

    def __len__(self) -> int:
        return len(self._items)

    def kinds(self) -> Counter[str]:
        """How many intermediates of each kind are kept (``dct``, ``whole``, ``frames``,
        ``rendered``: the second part of each key)."""
        with self._lock:
            return Counter(_kind(key) for key in self._items)
