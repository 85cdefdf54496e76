"""The autoscaler's metrics (``pixelmill autoscaler``; the rest are in :mod:`.metrics`).
Labels are bounded: ``service`` is a queue name (or ``render``), ``reason`` a
:class:`pixelmill.autoscale.Reason`; no ids."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

REPLICAS = Gauge(
    "pixelmill_autoscaler_replicas",
    "Replicas per service: decided (what the policy wants), current (asked of the "
    "actuator) and ready (running).",
    ["service", "state"],
    multiprocess_mode="mostrecent",
)
DECISIONS = Counter(
    "pixelmill_autoscaler_decisions_total",
    "Decisions per service and reason code (a decision carries one or more).",
    ["service", "reason"],
)
INPUTS = Gauge(
    "pixelmill_autoscaler_input",
    "What the policy read per service: arrival_rate (/s), queue_ready, queue_unacked, "
    "oldest_age_seconds, service_time_seconds (median).",
    ["service", "input"],
    multiprocess_mode="mostrecent",
)
DRY_RUN = Gauge(
    "pixelmill_autoscaler_dry_run",
    "1 when the autoscaler only decides and reports (--dry-run), 0 when it actuates.",
    multiprocess_mode="mostrecent",
)
LAST_DECISION = Gauge(
    "pixelmill_autoscaler_last_decision_timestamp_seconds",
    "Unix time of the autoscaler's last decision.",
    multiprocess_mode="mostrecent",
)
ERRORS = Counter(
    "pixelmill_autoscaler_errors_total",
    "Sources the autoscaler could not read (broker, store, tasks, actuator: it then "
    "holds the replicas) and failed actuations (actuator).",
    ["source"],
)
