"""Redis result cache, shared by many gateway instances."""

from __future__ import annotations

import logging

import redis

from pixelmill.errors import BackendUnavailable

log = logging.getLogger(__name__)


class RedisCache:
    """Values live under ``prefix + key`` with a TTL. Read/write failures are misses:
    a cache outage slows renders down, it never fails them."""

    def __init__(self, url: str, *, default_ttl: int = 86400, prefix: str = "pm:r:") -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.default_ttl = default_ttl
        self.prefix = prefix

    def get(self, key: str) -> bytes | None:
        try:
            value = self._client.get(self.prefix + key)
        except redis.RedisError as exc:
            log.warning("redis cache get failed: %s", exc)
            return None
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, *, ttl: int | None = None) -> None:
        try:
            self._client.set(self.prefix + key, value, ex=ttl or self.default_ttl)
        except redis.RedisError as exc:
            log.warning("redis cache set failed: %s", exc)

    def delete(self, key: str) -> None:
        try:
            self._client.delete(self.prefix + key)
        except redis.RedisError as exc:
            log.warning("redis cache delete failed: %s", exc)

    def ping(self) -> None:
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise BackendUnavailable(f"redis cache unreachable: {exc}") from exc

    def close(self) -> None:
        self._client.close()
