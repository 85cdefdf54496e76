"""Object storage behind a circuit breaker: while the store is down, reads and writes
fail fast (503 + ``Retry-After``) instead of each waiting for a timeout."""

from __future__ import annotations

from collections.abc import Iterator

from pixelmill.backends.breaker import Guarded
from pixelmill.backends.storage.base import Storage


class BreakerStorage(Guarded[Storage]):
    """A :class:`~pixelmill.backends.storage.base.Storage` guarding ``inner`` with
    ``breaker``. ``local_path`` and ``ping`` are not guarded: readiness asks the real
    store."""

    guarded = frozenset({"put", "put_file", "get", "open", "size", "exists", "delete"})

    def list(self, prefix: str = "") -> Iterator[str]:
        # the whole listing is read inside the breaker (a lazy iterator would escape it)
        return iter(self.breaker.call(lambda: list(self.inner.list(prefix))))
