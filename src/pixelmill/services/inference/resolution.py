"""What a model reference names, remembered for a short time by a serving process.

Resolving ``nuclei@production`` costs two metadata lookups (the alias, then the
version) on every prediction. :class:`ResolvedRefs` keeps the answer for
``ml.resolve_ttl_s`` seconds, and drops every entry as soon as the registry's repository
in this process writes a version or moves an alias (its ``changes`` count moves), so a
promotion or rollback made here is seen by the very next prediction; one made by another
process is seen within the TTL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pixelmill.backends.metadata.models import VersionRecord
from pixelmill.services.model_registry import ModelRegistry

#: references remembered at most (a bound on memory, not a tuning knob)
MAX_REFS = 1024


class ResolvedRefs:
    """``resolve(ref)`` as the registry answers it, cached for ``ttl`` seconds."""

    def __init__(
        self,
        registry: ModelRegistry,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.ttl = ttl
        self.clock = clock
        self._items: dict[str, tuple[float, VersionRecord]] = {}
        self._seen = registry.models.changes
        self._lock = threading.Lock()

    def resolve(self, ref: str) -> VersionRecord:
        """The version ``ref`` names now (unknown model, alias or version → 404, never
        cached)."""
        if self.ttl <= 0:
            return self.registry.resolve(ref)
        changes = self.registry.models.changes
        now = self.clock()
        with self._lock:
            if changes != self._seen:
                self._items.clear()
                self._seen = changes
            hit = self._items.get(ref)
            if hit is not None and hit[0] > now:
                return hit[1]
        version = self.registry.resolve(ref)
        with self._lock:
            # a write while we looked means the answer may already be stale: not kept
            if self.registry.models.changes == changes == self._seen:
                if len(self._items) >= MAX_REFS:
                    self._items.clear()
                self._items[ref] = (now + self.ttl, version)
        return version

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
