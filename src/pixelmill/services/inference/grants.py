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

import time
from collections.abc import Callable

from pixelmill.services.model_registry import Caller, ModelRegistry
from pixelmill.services.remembered import Remembered

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
        self._memo: Remembered[tuple[str, bool, str], bool] = Remembered(
            ttl,
            lambda: (registry.models.changes, registry.permissions.changes),
            MAX_DECISIONS,
            clock=clock,
        )

    def authorize(self, caller: Caller, name: str) -> None:
        """Return when ``caller`` may predict with model ``name``; 404 / 403 otherwise
        (:meth:`ModelRegistry.authorize <pixelmill.services.model_access.ModelAccess.authorize>`)."""
        key = (caller.user_id, caller.is_admin, name)
        self._memo.get(key, lambda: self.registry.authorize(caller, name, "model.predict"))

    def clear(self) -> None:
        self._memo.clear()
