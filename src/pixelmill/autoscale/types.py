"""The values every autoscaling policy takes and returns: configuration, observations,
decisions and their reason codes. Plain frozen dataclasses: no I/O, no clock of their
own (time is always an argument), so a policy is a pure function tested with a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

SloKind = Literal["latency", "queue_wait"]


class Reason(StrEnum):
    """Why a decision is what it is; each is explained in docs/autoscaling.md."""

    SLO_SIZING = "slo_sizing"
    FORECAST = "forecast"
    BURST_RESERVE = "burst_reserve"
    BACKLOG = "backlog"
    PANIC = "panic"
    SCALE_UP = "scale_up"
    SCALE_DOWN = "scale_down"
    STABILISING = "stabilising"
    DRAINING = "draining"
    STEP_LIMIT = "step_limit"
    COLD_START = "cold_start"
    BUSY_FLOOR = "busy_floor"
    STALE_METRICS = "stale_metrics"
    MISSING_METRICS = "missing_metrics"
    AT_MIN = "at_min"
    AT_MAX = "at_max"
    STEADY = "steady"
    BASELINE_RULE = "baseline_rule"


@dataclass(frozen=True, slots=True)
class ServiceTime:
    """A lognormal service time: ``median_s`` seconds, ``sigma`` of its logarithm."""

    median_s: float
    sigma: float

    @property
    def mean_s(self) -> float:
        import math

        return self.median_s * math.exp(self.sigma**2 / 2)

    @property
    def scv(self) -> float:
        """Squared coefficient of variation (variance / mean²)."""
        import math

        return math.exp(self.sigma**2) - 1


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """One autoscaled service or queue and what its users are promised.

    ``kind="latency"``: a request meets the SLO when wait + service ≤ ``slo_s`` (renders);
    ``kind="queue_wait"``: a job meets it when it starts within ``slo_s`` (its queue
    budget). ``target``: the share of requests the policy sizes for, counting only the
    misses waiting causes (the service time's own tail is not the autoscaler's to fix).
    """

    name: str
    kind: SloKind
    slo_s: float
    target: float = 0.999
    min_replicas: int = 1
    max_replicas: int = 2000
    cold_start_s: float = 20.0
    #: messages a worker takes off the queue before it starts them (RabbitMQ prefetch)
    prefetch: int = 0
    #: utilisation-like target the baselines use (CPU share, messages or requests a replica)
    baseline_target: float = 0.7
    #: replicas of the static baseline (None: max_replicas)
    static_replicas: int | None = None


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Every service's config plus the knobs of the control loop (seconds)."""

    services: tuple[ServiceConfig, ...]
    interval_s: float = 2.0
    stale_after_s: float = 30.0
    scale_down_window_s: float = 120.0
    max_down_step: float = 0.1
    up_headroom: float = 0.08
    down_hysteresis: float = 0.4
    hysteresis_half_life_s: float = 7200.0
    continue_hysteresis: float = 0.05
    #: no step down removes fewer workers than this share of the service's max_replicas
    down_min_share: float = 0.01
    panic_threshold: float = 1.5
    panic_hold_s: float = 60.0
    forecast_bucket_s: float = 60.0
    forecast_season: int = 1440
    forecast_z: float = 0.0
    reserve_decay_s: float = 1200.0
    reserve_min: float = 0.01

    def service(self, name: str) -> ServiceConfig:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the metrics said about one service, sampled at ``at`` (seconds).

    Rates are arrivals per second over a long (``arrival_rate``) and a short window
    (``short_rate``, for bursts); ``None`` means the metric is missing.
    """

    at: float
    arrival_rate: float | None
    short_rate: float | None
    queue_ready: int
    queue_unacked: int
    oldest_age_s: float
    service: ServiceTime
    in_flight: int
    cpu: float
    replicas: int
    ready: int
    #: the oracle only: the highest arrival rate in the coming window (it knows the future)
    future_rate: float | None = None


@dataclass(frozen=True, slots=True)
class Observations:
    now: float
    services: Mapping[str, Observation | None]


@dataclass(frozen=True, slots=True)
class Decision:
    """Replicas wanted per service, the policy's next state, and why."""

    replicas: Mapping[str, int]
    state: Any
    reasons: Mapping[str, tuple[Reason, ...]] = field(default_factory=dict)


Decide = Callable[[PolicyConfig, Observations, Any], Decision]


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A policy behind the one interface: ``decide`` every ``interval_s`` seconds.

    ``drains``: its actuator stops idle workers first and lets busy ones finish (ours,
    the oracle); otherwise victims are picked blind and get ``grace_s`` seconds to finish
    (Kubernetes' termination grace period, Ray Serve's graceful shutdown timeout).
    """

    name: str
    decide: Decide
    initial_state: Callable[[PolicyConfig], Any]
    interval_s: float
    drains: bool
    #: seconds a blindly stopped worker gets to finish (None: drains fully)
    grace_s: float | None = None
