"""The simulator's event loop: one-second ticks, a fluid queue per service, discrete
workers, and the policy called every ``interval_s``.

The model (docs/autoscaling.md, "The simulator"):

- Workers are counted one by one: started ones become ready after the service's cold
  start; stopped ones leave at once when idle, or drain (finish their task; with a blind
  actuator only within its grace period, past which the task is killed and redelivered).
- Work is a fluid FIFO queue per tick: the tick's Poisson arrivals join the backlog, the
  ready workers serve ``ready · dt / E[S]`` of it. Per-request SLO accounting happens in
  :mod:`.report`: each tick's arrivals are a cohort whose wait is the backlog ahead of it
  (when there is one) or the steady-state G/G/c wait of the tick (when there is not).
- The kill of a share of the workers takes them at random: their in-flight tasks go
  back to the queue (redelivered, counted), and the platform (Kubernetes' ReplicaSet, the
  local supervisor) starts replacements, which pay the cold start.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.autoscale.queueing import residual_tail, size_for_slo
from pixelmill.autoscale.sim.trace import Trace
from pixelmill.autoscale.types import (
    Observation,
    Observations,
    PolicyConfig,
    PolicySpec,
    ServiceConfig,
    ServiceTime,
)

__all__ = ["Run", "simulate"]

LONG_WINDOW_S = 30
SHORT_WINDOW_S = 2


@dataclass
class _Pool:
    config: ServiceConfig
    time: ServiceTime
    ready: int = 0
    starting: deque[list[float]] = field(default_factory=deque)
    draining: deque[list[float]] = field(default_factory=deque)
    backlog: float = 0.0
    busy: float = 0.0
    lost: float = 0.0
    redelivered: float = 0.0

    @property
    def replicas(self) -> int:
        return self.ready + int(sum(n for _, n in self.starting))

    @property
    def draining_count(self) -> float:
        return sum(n for _, n in self.draining)


@dataclass
class Run:
    """Per-tick records of one policy over one trace (arrays indexed by tick)."""

    policy: str
    trace: Trace
    config: PolicyConfig
    ready: dict[str, NDArray[np.float64]]
    paid: dict[str, NDArray[np.float64]]
    backlog_start: dict[str, NDArray[np.float64]]
    backlog_end: dict[str, NDArray[np.float64]]
    served: dict[str, NDArray[np.float64]]
    targets: dict[str, list[tuple[float, int]]]
    lost: dict[str, float]
    redelivered: dict[str, float]
    reasons: Counter[str]


def _observe(pool: _Pool, now: float, csum: NDArray[np.int64], t: int, dt: float) -> Observation:
    def rate(window: int) -> float:
        # before a full window has passed, the first window stands for the history
        hi = max(t, min(window, len(csum) - 1))
        lo = max(0, hi - window)
        return float(csum[hi] - csum[lo]) / (max(hi - lo, 1) * dt)

    buffered = min(pool.backlog, pool.config.prefetch * pool.ready)
    drain_rate = pool.ready / pool.time.mean_s
    return Observation(
        at=now,
        arrival_rate=rate(LONG_WINDOW_S),
        short_rate=rate(SHORT_WINDOW_S),
        queue_ready=math.ceil(pool.backlog - buffered),
        queue_unacked=math.ceil(pool.busy + buffered),
        oldest_age_s=pool.backlog / drain_rate if drain_rate else math.inf,
        service=pool.time,
        in_flight=math.ceil(pool.busy - 1e-9),
        cpu=pool.busy / pool.ready if pool.ready else 0.0,
        replicas=pool.replicas,
        ready=pool.ready,
    )


def _stop(pool: _Pool, excess: int, now: float, spec: PolicySpec) -> None:
    """Stop ``excess`` ready workers: idle ones first when the actuator drains."""
    busy_share = min(1.0, pool.busy / pool.ready) if pool.ready else 0.0
    if spec.drains:
        busy_victims = max(0.0, excess - (pool.ready - pool.busy))
        grace = math.inf
    else:
        busy_victims = excess * busy_share
        grace = spec.grace_s if spec.grace_s is not None else math.inf
    killed = 0.0 if math.isinf(grace) else busy_victims * residual_tail(pool.time, grace)
    pool.lost += killed
    pool.backlog += killed
    residual = pool.time.mean_s * (1 + pool.time.scv) / 2
    if busy_victims - killed > 0:
        pool.draining.append([now + min(grace, residual), busy_victims - killed])
    pool.ready -= excess
    pool.busy = max(0.0, pool.busy - busy_victims)


def _actuate(pool: _Pool, target: int, now: float, spec: PolicySpec) -> None:
    current = pool.replicas
    if target > current:
        pool.starting.append([now + pool.config.cold_start_s, target - current])
        return
    excess = current - target
    while excess > 0 and pool.starting:
        take = min(excess, int(pool.starting[-1][1]))
        pool.starting[-1][1] -= take
        excess -= take
        if pool.starting[-1][1] <= 0:
            pool.starting.pop()
    if excess > 0:
        _stop(pool, min(excess, pool.ready), now, spec)


def _advance(pool: _Pool, now: float, kill: float | None) -> None:
    while pool.starting and pool.starting[0][0] <= now:
        pool.ready += int(pool.starting.popleft()[1])
    while pool.draining and pool.draining[0][0] <= now:
        pool.draining.popleft()
    if kill and pool.ready:
        victims = round(kill * pool.ready)
        in_flight = victims * min(1.0, pool.busy / pool.ready)
        pool.redelivered += in_flight
        pool.backlog += in_flight
        pool.busy -= in_flight
        pool.ready -= victims
        # the latest start of all (one cold start per pool): the deque stays in order
        pool.starting.append([now + pool.config.cold_start_s, victims])


def _future_max(arrivals: NDArray[np.int64], ahead: int, dt: float) -> NDArray[np.float64]:
    """Highest arrival rate in [t, t + ahead] for every tick (what the oracle knows)."""
    from scipy.ndimage import maximum_filter1d

    padded = np.concatenate([arrivals, np.zeros(ahead + 1, dtype=arrivals.dtype)])
    window = maximum_filter1d(padded, size=ahead + 1, origin=-(ahead // 2))
    result: NDArray[np.float64] = window[: len(arrivals)] / dt
    return result


def simulate(trace: Trace, config: PolicyConfig, spec: PolicySpec) -> Run:
    """Run ``spec`` over ``trace``; workers start warm at the first decision's count."""
    dt, ticks = trace.dt, trace.ticks
    names = [s.name for s in config.services if s.name in trace.arrivals]
    pools = {n: _Pool(config=config.service(n), time=trace.service[n]) for n in names}
    csum = {n: np.concatenate([[0], np.cumsum(trace.arrivals[n])]) for n in names}
    future = {}
    if spec.name == "oracle":
        for n in names:
            ahead = int((pools[n].config.cold_start_s + spec.interval_s) / dt)
            future[n] = _future_max(trace.arrivals[n], ahead, dt)
    run = _empty_run(spec.name, trace, config, names, ticks)
    kills = {int(k / dt) for k in trace.kills}
    every = max(1, round(spec.interval_s / dt))
    state = spec.initial_state(config)
    for n, pool in pools.items():
        # warm: the workers the SLO needs at the first window's rate (the policy's first
        # decision then sets the count it wants, without a cold start)
        first = _observe(pool, 0.0, csum[n], 0, dt).arrival_rate or 0.0
        pool.ready = max(
            pool.config.min_replicas,
            size_for_slo(first, pool.time, pool.config.slo_s, pool.config.kind, 0.999),
        )
        pool.busy = min(float(pool.ready), first * pool.time.mean_s)
    for t in range(ticks):
        now = t * dt
        for pool in pools.values():
            _advance(pool, now, trace.kill_fraction if t in kills else None)
        if t % every == 0:
            state = _decide(spec, config, pools, state, now, t, csum, future, run)
        for n, pool in pools.items():
            _serve(pool, int(trace.arrivals[n][t]), dt, t, run, n)
    run.lost = {n: p.lost for n, p in pools.items()}
    run.redelivered = {n: p.redelivered for n, p in pools.items()}
    return run


def _empty_run(
    policy: str, trace: Trace, config: PolicyConfig, names: list[str], ticks: int
) -> Run:
    def arrays() -> dict[str, NDArray[np.float64]]:
        return {n: np.zeros(ticks) for n in names}

    return Run(
        policy=policy,
        trace=trace,
        config=config,
        ready=arrays(),
        paid=arrays(),
        backlog_start=arrays(),
        backlog_end=arrays(),
        served=arrays(),
        targets={n: [] for n in names},
        lost={},
        redelivered={},
        reasons=Counter(),
    )


def _decide(
    spec: PolicySpec,
    config: PolicyConfig,
    pools: dict[str, _Pool],
    state: Any,
    now: float,
    t: int,
    csum: dict[str, NDArray[np.int64]],
    future: dict[str, NDArray[np.float64]],
    run: Run,
) -> Any:
    observed = {}
    for n, pool in pools.items():
        obs = _observe(pool, now, csum[n], t, run.trace.dt)
        if n in future:
            obs = _with_future(obs, float(future[n][t]))
        observed[n] = obs
    decision = spec.decide(config, Observations(now=now, services=observed), state)
    for n, pool in pools.items():
        target = int(decision.replicas.get(n, pool.replicas))
        if t == 0:
            pool.ready = target
        elif target != pool.replicas:
            run.targets[n].append((now, target))
            _actuate(pool, target, now, spec)
        for reason in decision.reasons.get(n, ()):
            run.reasons[f"{n}:{reason}"] += 1
    return decision.state


def _with_future(obs: Observation, rate: float) -> Observation:
    from dataclasses import replace

    return replace(obs, future_rate=rate)


def _serve(pool: _Pool, arrivals: int, dt: float, t: int, run: Run, name: str) -> None:
    run.backlog_start[name][t] = pool.backlog
    capacity = pool.ready * dt / pool.time.mean_s
    work = pool.backlog + arrivals
    served = min(work, capacity)
    pool.backlog = work - served
    pool.busy = min(float(pool.ready), served * pool.time.mean_s / dt)
    run.backlog_end[name][t] = pool.backlog
    run.served[name][t] = served
    run.ready[name][t] = pool.ready
    run.paid[name][t] = pool.replicas + pool.draining_count
