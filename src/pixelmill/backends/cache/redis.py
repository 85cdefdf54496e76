"""Redis result cache, shared by many gateway instances."""

from __future__ import annotations

import logging
import time

import redis

from pixelmill.errors import BackendUnavailable

log = logging.getLogger(__name__)


class RedisCache:
    """Values live under ``prefix + key`` with a TTL. Read/write failures are misses:
    a cache outage slows renders down, it never fails them. After a failure the cache is
    skipped for ``retry_after`` seconds, so a hung Redis costs one socket timeout (0.5 s)
    per ``retry_after`` instead of one per request.

    With ``raise_errors`` a failure raises :class:`BackendUnavailable` instead, for a
    circuit breaker in front (:class:`~pixelmill.backends.cache.breaker.BreakerCache`)
    to count; that breaker then turns it into a miss."""

    def __init__(
        self,
        url: str,
        *,
        default_ttl: int = 86400,
        prefix: str = "pm:r:",
        retry_after: float = 1.0,
        raise_errors: bool = False,
    ) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.default_ttl = default_ttl
        self.prefix = prefix
        self.retry_after = retry_after
        self._down_until = 0.0
        self.raise_errors = raise_errors

    def _skip(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, what: str, exc: Exception) -> None:
        if self.raise_errors:
            raise BackendUnavailable(f"redis cache {what} failed: {exc}") from exc
        self._down_until = time.monotonic() + self.retry_after
        log.warning(
            "redis cache %s failed, skipping it for %.1f s: %s", what, self.retry_after, exc
        )

    def get(self, key: str) -> bytes | None:
        if self._skip():
            return None
        try:
            value = self._client.get(self.prefix + key)
        except redis.RedisError as exc:
            self._failed("get", exc)
            return None
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, *, ttl: int | None = None) -> None:
        ttl = self.default_ttl if ttl is None else ttl
        if ttl <= 0:  # expired on arrival; and Redis refuses ex=0
            self.delete(key)
            return
        if self._skip():
            return
        try:
            self._client.set(self.prefix + key, value, ex=ttl)
        except redis.RedisError as exc:
            self._failed("set", exc)

    def delete(self, key: str) -> None:
        # always tried, even while skipping: an invalidation must not be dropped lightly
        try:
            self._client.delete(self.prefix + key)
        except redis.RedisError as exc:
            self._failed("delete", exc)

    def ping(self) -> None:
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise BackendUnavailable(f"redis cache unreachable: {exc}") from exc
        self._down_until = 0.0

    def close(self) -> None:
        self._client.close()
