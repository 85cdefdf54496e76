"""Automatic model rollback: the feedback loop after a promotion.

When ``model@production`` is promoted to a new version, that version is *watched* for
``healing.rollback.watch_window_s``. Every prediction it serves is counted here (outcome,
latency, drift score). Once it served ``min_predictions``, a breach of a threshold — error
rate, 95th percentile latency, or drift — moves the alias back to the version it replaced,
by itself: the registry audit records a ``rollback`` by ``pixelmill-rollback`` with the
reason as its note, an event goes to the events table (``model.rollback``) and
``pixelmill_model_rollbacks_total{model,reason}`` counts it (the alert's hook).

Each serving process judges what it served; the first to see a breach acts, the others
find the alias moved and stand down. The judgement (:func:`judge`) is a pure function.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.models import VersionRecord
from pixelmill.errors import Conflict, PixelmillError
from pixelmill.ml import registry_rules as rules
from pixelmill.observability import metrics
from pixelmill.services.model_registry import ModelRegistry
from pixelmill.settings_healing import RollbackSettings

log = logging.getLogger(__name__)

#: the actor the audit names for an automatic rollback
ROLLBACK_ACTOR = "pixelmill-rollback"


@dataclass
class Served:
    """What one watched version served since its promotion."""

    ok: int = 0
    errors: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    drift: float = 0.0
    drift_window: int = 0


def judge(
    served: Served, policy: RollbackSettings, *, drift_threshold: float, drift_min: int
) -> tuple[str, str] | None:
    """``(reason, detail)`` when ``served`` breaches ``policy``, else ``None``.
    ``reason`` is ``error_rate``, ``latency`` or ``drift`` (a bounded metric label)."""
    total = served.ok + served.errors
    if total < policy.min_predictions:
        return None
    rate = served.errors / total
    if rate > policy.max_error_rate:
        return "error_rate", (
            f"error rate {rate:.2f} > {policy.max_error_rate} over {total} predictions"
        )
    if len(served.latencies) >= policy.min_predictions:
        p95 = float(np.percentile(np.asarray(served.latencies), 95))
        if p95 > policy.max_latency_p95_s:
            return "latency", f"latency p95 {p95:.3f} s > {policy.max_latency_p95_s} s"
    limit = policy.max_drift if policy.max_drift is not None else drift_threshold
    if served.drift_window >= drift_min and served.drift > limit:
        return "drift", f"drift PSI {served.drift:.3f} > {limit} over {served.drift_window} inputs"
    return None


@dataclass
class _Watch:
    version: VersionRecord
    checked_at: float
    promoted_at: float | None = None  # None: not a fresh production promotion
    from_version: int | None = None
    served: Served = field(default_factory=Served)
    done: bool = False


class RollbackWatcher:
    """Counts what versions serve and rolls a breaching fresh promotion back."""

    def __init__(
        self,
        *,
        registry: ModelRegistry,
        events: EventLog | None,
        policy: RollbackSettings,
        drift_threshold: float,
        drift_min: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.events = events
        self.policy = policy
        self.drift_threshold = drift_threshold
        self.drift_min = drift_min
        self.clock = clock
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()

    def observe(
        self,
        version: VersionRecord,
        *,
        ok: bool,
        seconds: float,
        drift: float = 0.0,
        drift_window: int = 0,
    ) -> None:
        """Count one prediction of ``version``; roll back when it breaches."""
        now = self.clock()
        with self._lock:
            watch = self._watches.get(version.id)
            if watch is None or (
                (watch.promoted_at is None or watch.done) and self._stale(watch, now)
            ):
                watch = self._watches[version.id] = self._lookup(version, now)
            if watch.done or watch.promoted_at is None:
                return
            if now - watch.promoted_at > self.policy.watch_window_s:
                watch.done = True  # survived its window
                return
            served = watch.served
            served.ok += ok
            served.errors += not ok
            if ok:
                served.latencies.append(seconds)
                served.drift, served.drift_window = drift, drift_window
            verdict = judge(
                served, self.policy, drift_threshold=self.drift_threshold, drift_min=self.drift_min
            )
            if verdict is None:
                return
            watch.done = True
        self._roll_back(watch, *verdict)

    def _stale(self, watch: _Watch, now: float) -> bool:
        return now - watch.checked_at >= self.policy.check_interval_s

    def _lookup(self, version: VersionRecord, now: float) -> _Watch:
        """Is ``version`` what ``production`` was last promoted to, within the window?"""
        watch = _Watch(version, checked_at=now)
        try:
            alias = self.registry.models.alias(version.model, rules.DEFAULT_ALIAS)
            if alias.version != version.version:
                return watch
            audit = self.registry.models.audit(version.model)
        except PixelmillError:
            return watch
        for entry in reversed(audit):
            if entry.alias == rules.DEFAULT_ALIAS and entry.action in ("promote", "rollback"):
                if entry.action == "promote" and entry.to_version == version.version:
                    at = _epoch(entry.at)
                    if entry.from_version is not None and now - at <= self.policy.watch_window_s:
                        watch.promoted_at, watch.from_version = at, entry.from_version
                break
        return watch

    def _roll_back(self, watch: _Watch, reason: str, detail: str) -> None:
        v = watch.version
        alias = rules.DEFAULT_ALIAS
        try:
            current = self.registry.models.alias(v.model, alias)
            if current.version != v.version:
                return  # moved meanwhile (by a person, or another process's rollback)
            self.registry.rollback(
                v.model,
                alias,
                actor=ROLLBACK_ACTOR,
                to_version=watch.from_version,
                note=f"automatic rollback of version {v.version}: {detail}",
                expected=v.version,  # checked as it moves: a later promotion stands
            )
        except Conflict:
            return  # moved while we judged (a person, or another process's rollback)
        except PixelmillError:
            log.exception("automatic rollback of %s failed", v.ref)
            return
        metrics.MODEL_ROLLBACKS.labels(v.model, reason).inc()
        log.warning(
            "rolled %s@%s back from version %s to %s: %s",
            v.model,
            alias,
            v.version,
            watch.from_version,
            detail,
        )
        if self.events is not None:
            try:
                self.events.record(
                    Actor(),
                    "model.rollback",
                    "model",
                    v.model,
                    before={"alias": alias, "version": v.version},
                    after={"alias": alias, "version": watch.from_version, "reason": detail},
                )
            except Exception:  # the audit has it already; the event is best effort
                log.exception("could not record the rollback event")


def _epoch(at: datetime) -> float:
    return at.timestamp()
