"""The live autoscaler (``pixelmill autoscaler``): every ``interval_s`` it reads the
running system's metrics (:mod:`.observe`), calls the pure policy's ``decide()``, and
reports the decision: Prometheus metrics (:mod:`pixelmill.observability.metrics_autoscaler`),
an ``autoscaler.decision`` event in the event log whenever a service's replicas or reasons
change (the gateway's ``GET /v1/autoscaler`` reads the latest per service), and, unless
it is a dry run, the actuator's ``scale()``.

In a dry run nothing is actuated and the replicas observed are the broker's consumers of
each queue (the workers that are really there).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pixelmill.autoscale import Decision, Observations, PolicyConfig, decide
from pixelmill.autoscale.policy import initial_state
from pixelmill.backends.scaling.base import Actuator
from pixelmill.observability import metrics_autoscaler as m
from pixelmill.services.autoscaler.observe import Reading, TaskRow, observations

__all__ = ["AutoscalerService", "Sources"]

log = logging.getLogger("pixelmill.autoscaler")

#: the event log's action for a changed decision (its target is the service)
EVENT = "autoscaler.decision"


@dataclass(frozen=True)
class Sources:
    """Where the live metrics come from (bound by the composition root)."""

    broker_stats: Callable[[], Sequence[tuple[str, str, int, int]]]
    store_stats: Callable[[], Sequence[tuple[str, str, int, datetime | None]]]
    tasks_since: Callable[[datetime], Sequence[TaskRow]]
    #: appends one event: (action, target id, after)
    record_event: Callable[[str, str, dict[str, Any]], None]


def _read(name: str, read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception as exc:  # a source down: the policy holds (missing_metrics)
        log.warning("autoscaler: %s unreadable: %s", name, exc)
        m.ERRORS.labels(name).inc()
        return None


class AutoscalerService:
    def __init__(
        self,
        config: PolicyConfig,
        sources: Sources,
        actuator: Actuator | None,
        *,
        queues: Sequence[str],
        window_s: float = 120.0,
        short_window_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.sources = sources
        self.actuator = actuator
        self.queues = [q for q in queues if any(s.name == q for s in config.services)]
        self.window_s = window_s
        self.short_window_s = short_window_s
        self.clock = clock
        self.state: Any = initial_state(config)
        self._reported: dict[str, tuple[int, tuple[str, ...]]] = {}
        m.DRY_RUN.set(1 if actuator is None else 0)

    @property
    def dry_run(self) -> bool:
        return self.actuator is None

    def read(self) -> Observations:
        now = self.clock()
        since = datetime.fromtimestamp(now - self.window_s, UTC)
        broker = _read("broker", self.sources.broker_stats)
        replicas: dict[str, tuple[int, int] | None] = {}
        for queue in self.queues:
            if self.actuator is not None:
                replicas[queue] = _read("actuator", partial(self.actuator.replicas, queue))
            else:
                consumers = sum(
                    c for q, lane, _, c in broker or () if q == queue and lane == "normal"
                )
                replicas[queue] = (consumers, consumers)
        reading = Reading(
            at=now,
            broker=broker,
            store=_read("store", self.sources.store_stats),
            tasks=_read("tasks", lambda: self.sources.tasks_since(since)),
            replicas=replicas,
        )
        return observations(
            reading, self.queues, window_s=self.window_s, short_window_s=self.short_window_s
        )

    def tick(self) -> Decision:
        """Read, decide, report and (unless a dry run) actuate once."""
        seen = self.read()
        services = tuple(s for s in self.config.services if s.name in self.queues)
        restricted = replace(self.config, services=services)
        decision = decide(restricted, seen, self.state)
        self.state = decision.state
        for queue in self.queues:
            self._report(queue, seen, decision)
            if self.actuator is not None:
                self._actuate(self.actuator, queue, decision.replicas[queue])
        m.LAST_DECISION.set(seen.now)
        return decision

    @staticmethod
    def _actuate(actuator: Actuator, queue: str, replicas: int) -> None:
        try:
            actuator.scale(queue, replicas)
        except Exception as exc:  # counted and logged; the next decision tries again
            log.warning("autoscaler: scaling %s to %d failed: %s", queue, replicas, exc)
            m.ERRORS.labels("actuator").inc()

    def _report(self, queue: str, seen: Observations, decision: Decision) -> None:
        wanted = decision.replicas[queue]
        reasons = tuple(str(r) for r in decision.reasons.get(queue, ()))
        observed = seen.services.get(queue)
        current, ready = (observed.replicas, observed.ready) if observed else (0, 0)
        m.REPLICAS.labels(queue, "decided").set(wanted)
        m.REPLICAS.labels(queue, "current").set(current)
        m.REPLICAS.labels(queue, "ready").set(ready)
        for reason in reasons:
            m.DECISIONS.labels(queue, reason).inc()
        inputs: dict[str, float] = {}
        if observed is not None:
            inputs = {
                "arrival_rate": observed.arrival_rate or 0.0,
                "queue_ready": observed.queue_ready,
                "queue_unacked": observed.queue_unacked,
                "oldest_age_seconds": observed.oldest_age_s,
                "service_time_seconds": observed.service.median_s,
            }
            for name, value in inputs.items():
                m.INPUTS.labels(queue, name).set(value)
        if self._reported.get(queue) == (wanted, reasons):
            return
        self._reported[queue] = (wanted, reasons)
        after = {
            "replicas": wanted,
            "current": current,
            "ready": ready,
            "reasons": list(reasons),
            "dry_run": self.dry_run,
            "inputs": inputs,
        }
        log.info("autoscaler: %s -> %d replicas (%s)", queue, wanted, ", ".join(reasons))
        try:
            self.sources.record_event(EVENT, queue, after)
        except Exception as exc:  # the event log is a report: scaling goes on without it
            log.warning("autoscaler: decision event not recorded: %s", exc)

    def run(
        self, stop: threading.Event, *, on_tick: Callable[[Decision], None] | None = None
    ) -> None:
        """Decide every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            decision = self.tick()
            if on_tick is not None:
                on_tick(decision)
            stop.wait(self.config.interval_s)
