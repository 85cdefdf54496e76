"""pixelmill's autoscaling policy: a pure function of config, observations and state.

Per service, every ``interval_s``: size for the SLO with the queueing model
(:mod:`.queueing`) at the measured arrival rate; let the Holt-Winters upper bound at the
cold-start horizon *add* capacity (never remove it); keep a burst reserve for the jumps
that outrun a cold start (:mod:`.reserve`); in a burst (the short-window rate needs
``panic_threshold`` x the ready workers) size for the short window at once and refuse to
scale down below that for ``panic_hold_s``; add transient workers to drain a backlog.
Scale up at once with a little headroom. Scale down to the highest need of the last
``scale_down_window_s``: the first step down after a rise (a reversal) only when that
need is ``down_hysteresis`` below the replicas, a band that halves every
``hysteresis_half_life_s`` the replicas are held; a step that follows a step down only
when it removes ``continue_hysteresis`` of them; never by fewer than ``down_min_share``
of the pool's maximum (unless to the minimum), by at most ``max_down_step`` of them a
decision, never below the busy workers (drain before stop) and never below what the
forecast needs before a new worker could be cold-started.
Stale or missing metrics hold the replicas as they are. Every decision says why
(:class:`Reason`; docs/autoscaling.md explains each).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from pixelmill.autoscale import forecast as hw
from pixelmill.autoscale import reserve as burst
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

__all__ = ["PIXELMILL", "ServiceState", "decide", "initial_state"]


_NO_JUMPS = burst.Jumps()


@dataclass(frozen=True, slots=True)
class ServiceState:
    model: hw.HoltWinters
    target: int | None = None
    history: tuple[tuple[float, int], ...] = ()
    panic_until: float = -math.inf
    jumps: burst.Jumps = _NO_JUMPS
    #: the direction of the target's last change (+1 up, -1 down, 0 none yet) and when
    moved: int = 0
    moved_at: float = -math.inf


def initial_state(config: PolicyConfig) -> dict[str, ServiceState]:
    model = hw.start(config.forecast_bucket_s, config.forecast_season)
    return {service.name: ServiceState(model=model) for service in config.services}


def decide(
    config: PolicyConfig, observations: Observations, state: Mapping[str, ServiceState]
) -> Decision:
    """Replicas per service for ``observations.now``; the state is returned, not changed."""
    replicas: dict[str, int] = {}
    reasons: dict[str, tuple[Reason, ...]] = {}
    new_state: dict[str, ServiceState] = {}
    fresh = initial_state(config)
    for service in config.services:
        previous = state.get(service.name) or fresh[service.name]
        observation = observations.services.get(service.name)
        count, why, after = _decide_service(
            config, service, observations.now, observation, previous
        )
        replicas[service.name], reasons[service.name], new_state[service.name] = count, why, after
    return Decision(replicas=replicas, state=new_state, reasons=reasons)


def _hold(
    service: ServiceConfig, observation: Observation | None, previous: ServiceState, why: Reason
) -> tuple[int, tuple[Reason, ...], ServiceState]:
    if observation is not None:
        count = observation.replicas
    elif previous.target is not None:
        count = previous.target
    else:
        count = service.min_replicas
    return count, (why,), replace(previous, target=count)


def _needed(
    config: PolicyConfig,
    service: ServiceConfig,
    obs: Observation,
    model: hw.HoltWinters,
    reserve: float,
) -> tuple[int, list[Reason]]:
    """Workers the SLO needs now, with the forecast and the burst reserve."""

    def size(rate: float) -> int:
        return size_for_slo(rate, obs.service, service.slo_s, service.kind, service.target)

    rate = obs.arrival_rate or 0.0
    needed, why = size(rate), [Reason.SLO_SIZING]
    ahead = hw.forecast(model, service.cold_start_s + config.interval_s, config.forecast_z)
    if ahead is not None and ahead.upper > rate:
        by_forecast = size(ahead.upper)
        if by_forecast > needed:
            needed, why, rate = by_forecast, [*why, Reason.FORECAST], ahead.upper
    # a jump j left uncovered makes the wait grow by about j seconds a second until new
    # workers are up: a queue whose budget outlasts that (budget / cold start) needs no
    # reserve for it; a 150-ms render SLO covers next to nothing
    reserve -= service.slo_s / (service.cold_start_s + config.interval_s)
    if reserve > config.reserve_min:
        needed, why = max(needed, size(rate * (1 + reserve))), [*why, Reason.BURST_RESERVE]
    return needed, why


def _backlog(config: PolicyConfig, service: ServiceConfig, obs: Observation, rate: float) -> int:
    """Extra workers to clear a backlog older than half the SLO within half a cold start
    of the new workers being up: what waits now, plus what piles up meanwhile if arrivals
    outrun the ready workers. Transient: kept out of the scale-down window."""
    waiting = obs.queue_ready + max(0, obs.queue_unacked - obs.in_flight)
    if obs.oldest_age_s < service.slo_s / 2:
        return 0
    overflow = max(0.0, rate - obs.ready / obs.service.mean_s) * service.cold_start_s
    drain_s = max(config.interval_s, service.cold_start_s / 2)
    return math.ceil((waiting + overflow) * obs.service.mean_s / drain_s)


def _decide_service(
    config: PolicyConfig,
    service: ServiceConfig,
    now: float,
    obs: Observation | None,
    previous: ServiceState,
) -> tuple[int, tuple[Reason, ...], ServiceState]:
    if obs is None or obs.arrival_rate is None:
        return _hold(service, obs, previous, Reason.MISSING_METRICS)
    if now - obs.at > config.stale_after_s:
        return _hold(service, obs, previous, Reason.STALE_METRICS)
    model = hw.observe(previous.model, obs.at, obs.arrival_rate)
    short = obs.short_rate if obs.short_rate is not None else obs.arrival_rate
    jumps = burst.observe(
        previous.jumps,
        obs.at,
        short,
        horizon_s=service.cold_start_s + config.interval_s,
        window_s=config.interval_s,
        decay_s=config.reserve_decay_s,
        cap=config.panic_threshold - 1,
    )
    needed, why = _needed(config, service, obs, model, jumps.reserve)
    panic_until = previous.panic_until
    by_short = size_for_slo(short, obs.service, service.slo_s, service.kind, service.target)
    if by_short >= config.panic_threshold * max(obs.ready, 1) and by_short > needed:
        panic_until = now + config.panic_hold_s
    panicking = now < panic_until
    if panicking:
        needed = max(needed, by_short)
        why.append(Reason.PANIC)
    window_start = now - config.scale_down_window_s
    history = (*(h for h in previous.history if h[0] > window_start), (now, needed))
    extra = _backlog(config, service, obs, short)
    if extra:
        needed += extra
        why.append(Reason.BACKLOG)
    current = obs.replicas
    if needed > current:
        target = math.ceil(needed * (1 + config.up_headroom))
        why.append(Reason.SCALE_UP)
    elif extra:
        # the workers asked for to clear a backlog are what clears it: none goes while
        # it lasts (the backlog's extra shrinks as it drains, and stopping workers then
        # only slows the drain that every request behind it waits for)
        target = current
        why.append(Reason.DRAINING)
    else:
        # in panic too: what goes is the backlog's transient extra, never the panic size
        target = _scale_down(config, service, obs, model, history, why, previous, now)
    target = _bounds(service, obs, target, why)
    moved, moved_at = previous.moved, previous.moved_at
    if target != current:
        moved, moved_at = (1 if target > current else -1), now
    after = ServiceState(model, target, history, panic_until, jumps, moved, moved_at)
    return target, tuple(why), after


def _scale_down(
    config: PolicyConfig,
    service: ServiceConfig,
    obs: Observation,
    model: hw.HoltWinters,
    history: tuple[tuple[float, int], ...],
    why: list[Reason],
    previous: ServiceState,
    now: float,
) -> int:
    current = obs.replicas
    stable = max(count for _, count in history)
    wanted = math.ceil(stable * (1 + config.up_headroom))
    drop = current - wanted
    if previous.moved < 0:
        # the last change went down too: going on down reverses nothing, so a small
        # band is enough (the target keeps the scale-up's headroom over the need)
        small = drop <= current * config.continue_hysteresis
    else:
        # the first step down after a rise is a reversal: only for a wide excess, a band
        # that narrows the longer the replicas have been held (an excess that lasts is
        # not the next rise's capacity)
        held = now - previous.moved_at
        band = config.down_hysteresis * 2 ** (-held / config.hysteresis_half_life_s)
        small = stable >= current * (1 - max(band, config.continue_hysteresis))
    # (a step to the minimum is never too small: an idle pool goes all the way down)
    tiny = drop < config.down_min_share * service.max_replicas and wanted > service.min_replicas
    if small or tiny:
        why.append(Reason.STABILISING if history[-1][1] < stable else Reason.STEADY)
        return current
    step = max(1, math.ceil(current * config.max_down_step))
    # down to the need plus the same headroom a scale-up adds, so that the next small
    # rise does not turn straight back up (a reversal)
    target = wanted
    if current - step > target:
        target = current - step
        why.append(Reason.STEP_LIMIT)
    ahead = hw.forecast(model, service.cold_start_s + config.scale_down_window_s, config.forecast_z)
    if ahead is not None:
        later = size_for_slo(ahead.upper, obs.service, service.slo_s, service.kind, service.target)
        if later > target:
            target = min(current, later)
            why.append(Reason.COLD_START)
    if target < current:
        why.append(Reason.SCALE_DOWN)
    return target


def _bounds(service: ServiceConfig, obs: Observation, target: int, why: list[Reason]) -> int:
    if target < obs.in_flight:
        target = obs.in_flight
        why.append(Reason.BUSY_FLOOR)
    if target < service.min_replicas:
        target = service.min_replicas
        why.append(Reason.AT_MIN)
    if target > service.max_replicas:
        target = service.max_replicas
        why.append(Reason.AT_MAX)
    return target


PIXELMILL = PolicySpec(
    name="pixelmill", decide=decide, initial_state=initial_state, interval_s=2.0, drains=True
)
