"""The baselines, behind the same interface as :mod:`.policy` (``decide(config,
observations, state) -> Decision``), each as its own documented algorithm:

- ``static``: a fixed number of replicas (``static_replicas``).
- ``hpa``: the Kubernetes HorizontalPodAutoscaler on CPU (``baseline_target`` of a core):
  ``desired = ceil(ready x usage / target)``; no change inside the 0.1 tolerance; when
  scaling up, not-yet-ready pods count as 0 % used and the ratio is recomputed (skip if it
  then falls inside the tolerance or flips); scale-up limited to max(2x, +4) per 15-s
  sync; scale-down to the highest recommendation of the last 300 s.
- ``keda_ready`` / ``keda_unacked``: KEDA's RabbitMQ scaler (QueueLength mode) feeding the
  HPA an external metric with an AverageValue target: ``desired = ceil(messages /
  target)``, the same tolerance (against the current replicas) and 300-s stabilisation;
  messages are the ready ones only (the scaler's default over AMQP) or ready + unacked.
- ``ray``: Ray Serve's default policy: ongoing requests (queued + running) over
  ``target x replicas`` as the error ratio, ``desired = ceil(replicas x ratio)``, applied
  only after it has pointed the same way for 30 s (up) or 600 s (down), every second.
- ``oracle``: knows the highest arrival rate of the coming cold-start window and sizes
  for it with the queueing model, no stabilisation: the floor on worker-seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pixelmill.autoscale.policy import PIXELMILL
from pixelmill.autoscale.queueing import size_for_slo
from pixelmill.autoscale.types import (
    Decision,
    Observation,
    Observations,
    PolicyConfig,
    PolicySpec,
    Reason,
    ServiceConfig,
)

__all__ = ["BASELINES", "POLICIES", "hpa_desired"]

HPA_TOLERANCE = 0.1
HPA_DOWN_WINDOW_S = 300.0
RAY_UP_DELAY_S = 30.0
RAY_DOWN_DELAY_S = 600.0
RAY_INTERVAL_S = 1.0


def _clamp(service: ServiceConfig, count: int) -> int:
    return max(service.min_replicas, min(service.max_replicas, count))


def _empty(config: PolicyConfig) -> dict[str, Any]:
    return {}


# -- static -------------------------------------------------------------------------------
def _static(config: PolicyConfig, observations: Observations, state: Any) -> Decision:
    replicas = {
        s.name: _clamp(s, s.static_replicas if s.static_replicas is not None else s.max_replicas)
        for s in config.services
    }
    reasons = {s.name: (Reason.BASELINE_RULE,) for s in config.services}
    return Decision(replicas=replicas, state=state, reasons=reasons)


# -- Kubernetes HPA -------------------------------------------------------------------------
def hpa_desired(current: int, ready: int, usage: float, target: float) -> int:
    """The HPA's replica count for an average ``usage`` per ready pod against ``target``.

    ``current`` counts every pod (ready or not); pods not ready count as 0 when the
    metric says scale up. Returns ``current`` inside the tolerance.

    >>> hpa_desired(3, 3, 200, 100)   # the docs' example: 200m used, 100m wanted
    6
    >>> hpa_desired(4, 4, 50, 100)
    2
    """
    if ready <= 0:
        return current
    ratio = usage / target
    if abs(ratio - 1.0) <= HPA_TOLERANCE:
        return current
    if ratio > 1.0 and current > ready:
        ratio = usage * ready / (target * current)
        if ratio <= 1.0 or abs(ratio - 1.0) <= HPA_TOLERANCE:
            return current
        return math.ceil(ratio * current)
    return math.ceil(ratio * ready)


def _stabilised(
    history: tuple[tuple[float, int], ...], now: float, desired: int, current: int
) -> tuple[int, tuple[tuple[float, int], ...]]:
    """Scale-down stabilisation (300 s) and the default scale-up limit max(2x, +4)."""
    kept = (*(h for h in history if h[0] > now - HPA_DOWN_WINDOW_S), (now, desired))
    if desired < current:
        desired = min(current, max(count for _, count in kept))
    desired = min(desired, max(2 * current, current + 4))
    return desired, kept


def _hpa_like(metric: str) -> Any:
    def decide(
        config: PolicyConfig, observations: Observations, state: Mapping[str, Any]
    ) -> Decision:
        replicas, reasons, after = {}, {}, {}
        for service in config.services:
            obs = observations.services.get(service.name)
            history = state.get(service.name, ())
            if obs is None or obs.arrival_rate is None:
                reasons[service.name] = (Reason.MISSING_METRICS,)
                replicas[service.name] = obs.replicas if obs else service.min_replicas
                after[service.name] = history
                continue
            raw = _raw_desired(metric, service, obs)
            desired, after[service.name] = _stabilised(history, observations.now, raw, obs.replicas)
            replicas[service.name] = _clamp(service, desired)
            reasons[service.name] = (Reason.BASELINE_RULE,)
        return Decision(replicas=replicas, state=after, reasons=reasons)

    return decide


def _raw_desired(metric: str, service: ServiceConfig, obs: Observation) -> int:
    target = service.baseline_target
    if metric == "cpu":
        return hpa_desired(obs.replicas, obs.ready, obs.cpu, target)
    messages = obs.queue_ready + (obs.queue_unacked if metric == "ready_unacked" else 0)
    ratio = messages / (target * max(obs.replicas, 1))
    if abs(ratio - 1.0) <= HPA_TOLERANCE:
        return obs.replicas
    return math.ceil(messages / target)


# -- Ray Serve --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _RayCounter:
    counter: int = 0


def _ray(config: PolicyConfig, observations: Observations, state: Mapping[str, Any]) -> Decision:
    replicas, reasons, after = {}, {}, {}
    for service in config.services:
        obs = observations.services.get(service.name)
        counter = state.get(service.name, _RayCounter()).counter
        if obs is None or obs.arrival_rate is None:
            replicas[service.name] = obs.replicas if obs else service.min_replicas
            reasons[service.name], after[service.name] = (Reason.MISSING_METRICS,), _RayCounter()
            continue
        # Ray's error ratio with both smoothing factors at their default, 1
        current = max(obs.replicas, 1)
        ongoing = obs.queue_ready + obs.queue_unacked
        error_ratio = ongoing / (service.baseline_target * current)
        desired = _clamp(service, math.ceil(current * error_ratio))
        decision = obs.replicas
        if desired > obs.replicas:
            counter = max(counter, 0) + 1
            if counter * RAY_INTERVAL_S >= RAY_UP_DELAY_S:
                decision, counter = desired, 0
        elif desired < obs.replicas:
            counter = min(counter, 0) - 1
            if -counter * RAY_INTERVAL_S >= RAY_DOWN_DELAY_S:
                decision, counter = desired, 0
        else:
            counter = 0
        replicas[service.name], reasons[service.name] = decision, (Reason.BASELINE_RULE,)
        after[service.name] = _RayCounter(counter)
    return Decision(replicas=replicas, state=after, reasons=reasons)


# -- oracle -----------------------------------------------------------------------------------
def _oracle(config: PolicyConfig, observations: Observations, state: Any) -> Decision:
    replicas, reasons = {}, {}
    for service in config.services:
        obs = observations.services.get(service.name)
        if obs is None or obs.future_rate is None:
            replicas[service.name] = obs.replicas if obs else service.min_replicas
            reasons[service.name] = (Reason.MISSING_METRICS,)
            continue
        needed = size_for_slo(
            obs.future_rate, obs.service, service.slo_s, service.kind, service.target
        )
        waiting = obs.queue_ready + max(0, obs.queue_unacked - obs.in_flight)
        if waiting:
            needed += math.ceil(waiting * obs.service.mean_s / max(5.0, service.slo_s / 2))
        replicas[service.name] = _clamp(service, max(needed, obs.in_flight))
        reasons[service.name] = (Reason.BASELINE_RULE,)
    return Decision(replicas=replicas, state=state, reasons=reasons)


BASELINES: dict[str, PolicySpec] = {
    "hpa": PolicySpec("hpa", _hpa_like("cpu"), _empty, 15.0, drains=False, grace_s=30.0),
    "keda_ready": PolicySpec(
        "keda_ready", _hpa_like("ready"), _empty, 15.0, drains=False, grace_s=30.0
    ),
    "keda_unacked": PolicySpec(
        "keda_unacked", _hpa_like("ready_unacked"), _empty, 15.0, drains=False, grace_s=30.0
    ),
    "ray": PolicySpec("ray", _ray, _empty, RAY_INTERVAL_S, drains=False, grace_s=20.0),
    "static": PolicySpec("static", _static, _empty, 60.0, drains=True),
    "oracle": PolicySpec("oracle", _oracle, _empty, 5.0, drains=True),
}

#: every policy by the name the CLI and the JSON report use, ours first
POLICIES: dict[str, PolicySpec] = {"pixelmill": PIXELMILL, **BASELINES}
