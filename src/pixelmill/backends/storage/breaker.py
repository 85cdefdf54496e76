"""Object storage behind a circuit breaker: while the store is down, reads and writes
fail fast (503 + ``Retry-After``) instead of each waiting for a timeout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pixelmill.backends.breaker import CircuitBreaker
from pixelmill.backends.storage.base import Storage


class BreakerStorage:
    """A :class:`~pixelmill.backends.storage.base.Storage` guarding ``inner`` with
    ``breaker``. ``ping`` is not guarded: readiness asks the real store."""

    def __init__(self, inner: Storage, breaker: CircuitBreaker) -> None:
        self.inner = inner
        self.breaker = breaker

    def __getattr__(self, name: str) -> Any:
        # what is not in the Protocol (``purge``, ``queue_name``, ``bucket``, ...) is the
        # wrapped backend's own, unguarded: admin and test helpers, not the request path
        if name == "inner":  # not set yet (copy, unpickling): no endless recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        self.breaker.call(self.inner.put, key, data, content_type=content_type)

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        self.breaker.call(self.inner.put_file, key, path, content_type=content_type)

    def get(self, key: str) -> bytes:
        return self.breaker.call(self.inner.get, key)

    def open(self, key: str) -> BinaryIO:
        return self.breaker.call(self.inner.open, key)

    def size(self, key: str) -> int:
        return self.breaker.call(self.inner.size, key)

    def exists(self, key: str) -> bool:
        return self.breaker.call(self.inner.exists, key)

    def delete(self, key: str) -> None:
        self.breaker.call(self.inner.delete, key)

    def list(self, prefix: str = "") -> Iterator[str]:
        return iter(self.breaker.call(lambda: list(self.inner.list(prefix))))

    def local_path(self, key: str) -> Path | None:
        return self.inner.local_path(key)

    def ping(self) -> None:
        self.inner.ping()
