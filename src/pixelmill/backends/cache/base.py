"""The result cache contract: bytes by key, bounded, best-effort (a miss is always safe)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Cache(Protocol):
    def get(self, key: str) -> bytes | None:
        """The cached value, or ``None`` on a miss (or when the cache is unreachable)."""

    def set(self, key: str, value: bytes, *, ttl: int | None = None) -> None:
        """Store ``value`` for ``ttl`` seconds (backend default when ``None``)."""

    def delete(self, key: str) -> None: ...

    def ping(self) -> None:
        """Raise BackendUnavailable when the cache cannot be reached."""

    def close(self) -> None:
        """Release connections (a no-op for in-process caches)."""
