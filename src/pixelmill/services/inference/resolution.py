"""What a model reference names, remembered for a short time by a serving process.

Resolving ``nuclei@production`` costs two metadata lookups (the alias, then the
version) on every prediction. :class:`ResolvedRefs` keeps the answer for
``ml.resolve_ttl_s`` seconds, and drops every entry as soon as the registry's repository
in this process writes a version or moves an alias (its ``changes`` count moves), so a
promotion or rollback made here is seen by the very next prediction; one made by another
process is seen within the TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pixelmill.backends.metadata.models import VersionRecord
from pixelmill.services.model_registry import ModelRegistry
from pixelmill.services.remembered import Remembered

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
        self._memo: Remembered[str, VersionRecord] = Remembered(
            ttl, lambda: registry.models.changes, MAX_REFS, clock=clock
        )

    def resolve(self, ref: str) -> VersionRecord:
        """The version ``ref`` names now (unknown model, alias or version → 404, never
        cached)."""
        return self._memo.get(ref, lambda: self.registry.resolve(ref))

    def clear(self) -> None:
        self._memo.clear()
