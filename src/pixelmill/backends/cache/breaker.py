"""The result cache behind a circuit breaker. A cache is best effort: a failed or
refused read is a miss and a failed write is dropped, so an outage makes renders
uncached (slower), never failed; while the breaker is open Redis is not even tried."""

from __future__ import annotations

import contextlib
import logging

from pixelmill.backends.breaker import Guarded
from pixelmill.backends.cache.base import Cache
from pixelmill.errors import BackendUnavailable

log = logging.getLogger(__name__)


class BreakerCache(Guarded[Cache]):
    """A :class:`~pixelmill.backends.cache.base.Cache` over ``inner``, which must raise
    :class:`BackendUnavailable` on failure (``RedisCache(raise_errors=True)``);
    ``ping`` and ``close`` are the inner cache's own."""

    def get(self, key: str) -> bytes | None:
        try:
            return self.breaker.call(self.inner.get, key)
        except BackendUnavailable:
            return None

    def set(self, key: str, value: bytes, *, ttl: int | None = None) -> None:
        with contextlib.suppress(BackendUnavailable):
            self.breaker.call(self.inner.set, key, value, ttl=ttl)

    def delete(self, key: str) -> None:
        # an invalidation is tried even while open: dropping one could serve stale bytes
        try:
            self.inner.delete(key)
        except BackendUnavailable as exc:
            log.warning("cache delete of %s failed: %s", key, exc.detail)
