"""Who may predict with a model, remembered for a short time by a serving process.

Deciding that a caller may use ``nuclei`` costs two metadata lookups (the model, then
the caller's level on it) on every prediction, about 1 ms on SQLite: a share of a small
prediction's fixed cost (docs/benchmarks.md, "ML serving over HTTP").
:class:`PredictGrants` keeps a *positive* decision for ``ml.resolve_ttl_s`` seconds (as
:class:`~.resolution.ResolvedRefs` keeps what an alias names). Refusals are never kept.
Every entry is dropped as soon as this process's registry writes a version, moves an
alias or changes a grant (the repositories' ``changes`` counts move), so a revocation
made through this process holds for the very next request; one made by another process
holds within the TTL, as a key revoked elsewhere does (``security.key_cache_s``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pixelmill.services.model_registry import Caller, ModelRegistry

#: decisions remembered at most (a bound on memory, not a tuning knob)
MAX_DECISIONS = 4096


class PredictGrants:
    """``registry.authorize(caller, name, "model.predict")``, positive answers cached."""

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
        self._items: dict[tuple[str, bool, str], float] = {}
        self._seen = self._changes()
        self._lock = threading.Lock()

    def _changes(self) -> tuple[int, int]:
        return self.registry.models.changes, self.registry.permissions.changes

    def authorize(self, caller: Caller, name: str) -> None:
        """Return when ``caller`` may predict with model ``name``; 404 / 403 otherwise
        (:meth:`ModelRegistry.authorize <pixelmill.services.model_access.ModelAccess.authorize>`)."""
        if self.ttl <= 0:
            self.registry.authorize(caller, name, "model.predict")
            return
        key = (caller.user_id, caller.is_admin, name)
        changes = self._changes()
        now = self.clock()
        with self._lock:
            if changes != self._seen:
                self._items.clear()
                self._seen = changes
            until = self._items.get(key)
            if until is not None and until > now:
                return
        self.registry.authorize(caller, name, "model.predict")
        with self._lock:
            # a write while we looked means the answer may already be stale: not kept
            if self._changes() == changes == self._seen:
                if len(self._items) >= MAX_DECISIONS:
                    self._items.clear()
                self._items[key] = now + self.ttl

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
