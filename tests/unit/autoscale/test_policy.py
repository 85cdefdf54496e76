"""pixelmill's policy, driven by a fake clock: every test is a short story of
observations fed to ``decide`` and the replicas it asks for."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from pixelmill.autoscale import (
    Decision,
    Observation,
    Observations,
    PolicyConfig,
    Reason,
    ServiceConfig,
    ServiceTime,
    decide,
)
from pixelmill.autoscale.policy import initial_state
from pixelmill.autoscale.queueing import size_for_slo

JOBS = ServiceTime(median_s=0.5, sigma=0.5)
SERVICE = ServiceConfig("jobs", "queue_wait", slo_s=5.0, min_replicas=2, max_replicas=500)
CONFIG = PolicyConfig(services=(SERVICE,), interval_s=2.0, scale_down_window_s=60.0)


class FakeClock:
    """Feeds observations every ``interval_s`` and keeps the policy's state."""

    def __init__(self, config: PolicyConfig = CONFIG) -> None:
        self.config, self.now, self.state = config, 0.0, initial_state(config)
        self.replicas = 10

    def step(self, rate: float, **fields: Any) -> Decision:
        fields.setdefault("short_rate", rate)
        obs = _observation(self.now, rate, self.replicas, **fields)
        decision = decide(
            self.config, Observations(now=self.now, services={"jobs": obs}), self.state
        )
        self.state, self.replicas = decision.state, decision.replicas["jobs"]
        self.now += self.config.interval_s
        return decision


def _observation(now: float, rate: float | None, replicas: int, **fields: Any) -> Observation:
    values: dict[str, Any] = {
        "at": now,
        "arrival_rate": rate,
        "short_rate": rate,
        "queue_ready": 0,
        "queue_unacked": 0,
        "oldest_age_s": 0.0,
        "service": JOBS,
        "in_flight": 0,
        "cpu": 0.5,
        "replicas": replicas,
        "ready": replicas,
    }
    values.update(fields)
    return Observation(**values)


def _needed(rate: float) -> int:
    return size_for_slo(rate, JOBS, SERVICE.slo_s, SERVICE.kind, SERVICE.target)


def test_steady_load_gets_the_queueing_model_size() -> None:
    clock = FakeClock()
    for _ in range(5):
        decision = clock.step(100.0)
    assert clock.replicas >= _needed(100.0)
    assert clock.replicas <= math.ceil(_needed(100.0) * 1.1) + 1
    assert Reason.SLO_SIZING in decision.reasons["jobs"]


def test_a_burst_scales_up_at_once_in_panic() -> None:
    clock = FakeClock()
    for _ in range(10):
        clock.step(50.0)
    before = clock.replicas
    # the short window sees 4x the load before the long one does
    decision = clock.step(60.0, short_rate=200.0)
    assert Reason.PANIC in decision.reasons["jobs"]
    assert clock.replicas >= _needed(200.0) > 1.5 * before


def test_no_scale_down_inside_the_window_then_bounded_steps() -> None:
    clock = FakeClock()
    for _ in range(10):
        clock.step(200.0)
    high = clock.replicas
    seen = []
    for _ in range(int(CONFIG.scale_down_window_s / CONFIG.interval_s) - 1):
        decision = clock.step(20.0)
        seen.append(clock.replicas)
    # inside the window: held, and said so
    assert seen == [high] * len(seen)
    assert Reason.STABILISING in decision.reasons["jobs"]
    # past the window: down, by at most max_down_step of the replicas a decision
    steps = []
    for _ in range(300):
        before = clock.replicas
        clock.step(20.0)
        steps.append(before - clock.replicas)
    assert max(steps) <= math.ceil(high * CONFIG.max_down_step)
    # (the forecast, its level still behind the drop, keeps a little more than the rate needs)
    assert _needed(20.0) <= clock.replicas <= high / 2


def test_stale_metrics_hold_the_replicas() -> None:
    clock = FakeClock()
    clock.step(100.0)
    held = clock.replicas
    old = clock.now - CONFIG.stale_after_s - 1
    decision = clock.step(1.0, at=old)
    assert clock.replicas == held
    assert decision.reasons["jobs"] == (Reason.STALE_METRICS,)


def test_missing_metrics_hold_the_replicas() -> None:
    clock = FakeClock()
    clock.step(100.0)
    held = clock.replicas
    decision = clock.step(None)  # type: ignore[arg-type]
    assert clock.replicas == held
    assert decision.reasons["jobs"] == (Reason.MISSING_METRICS,)
    nothing = decide(CONFIG, Observations(now=clock.now, services={}), clock.state)
    assert nothing.replicas["jobs"] == held


def test_never_below_the_busy_workers() -> None:
    clock = FakeClock()
    for _ in range(40):
        clock.step(300.0)
    # load vanishes but long tasks still run on 150 workers
    for _ in range(200):
        decision = clock.step(1.0, in_flight=150)
    assert clock.replicas == 150
    assert Reason.BUSY_FLOOR in decision.reasons["jobs"]


def test_min_and_max_replicas() -> None:
    clock = FakeClock()
    for _ in range(100):
        decision = clock.step(0.0)
    assert clock.replicas == SERVICE.min_replicas
    assert Reason.AT_MIN in decision.reasons["jobs"]
    decision = clock.step(10_000.0)
    assert clock.replicas == SERVICE.max_replicas
    assert Reason.AT_MAX in decision.reasons["jobs"]


def test_a_backlog_adds_workers_to_drain_it() -> None:
    clock = FakeClock()
    for _ in range(5):
        clock.step(100.0)
    calm = clock.replicas
    decision = clock.step(100.0, queue_ready=2000, oldest_age_s=20.0)
    assert Reason.BACKLOG in decision.reasons["jobs"]
    assert clock.replicas > calm


def test_the_same_inputs_give_the_same_decisions() -> None:
    def story() -> list[int]:
        clock = FakeClock()
        return [clock.replicas for rate in (50, 80, 300, 300, 40, 40) if clock.step(rate)]

    assert story() == story()


def test_decide_does_not_change_the_state_it_is_given() -> None:
    state = initial_state(CONFIG)
    frozen = replace(state["jobs"])
    obs = _observation(0.0, 100.0, 10)
    decide(CONFIG, Observations(now=0.0, services={"jobs": obs}), state)
    assert state["jobs"] == frozen


def test_workers_asked_for_a_backlog_stay_until_it_is_cleared() -> None:
    # given a burst that left a backlog and the workers asked for to clear it
    clock = FakeClock()
    for _ in range(5):
        clock.step(100.0)
    clock.step(100.0, queue_ready=2_000, oldest_age_s=60.0)
    asked = clock.replicas
    # when the arrival rate is back to normal but the backlog is still draining
    for waiting in (1_500, 1_000, 500, 100):
        decision = clock.step(100.0, queue_ready=waiting, oldest_age_s=30.0)
        # then not one of them is stopped: stopping them would only slow the drain
        assert clock.replicas == asked
        assert Reason.DRAINING in decision.reasons["jobs"]
    # and once the queue is empty the transient workers may go
    for _ in range(int(CONFIG.scale_down_window_s / CONFIG.interval_s) + 10):
        decision = clock.step(100.0)
    assert clock.replicas < asked
    assert Reason.DRAINING not in decision.reasons["jobs"]


def _ramp(config: PolicyConfig, minutes: int) -> tuple[FakeClock, Decision]:
    clock = FakeClock(config)
    decision = clock.step(50.0)
    for second in range(0, minutes * 60, int(config.interval_s)):
        decision = clock.step(50.0 + second * 0.3)
    return clock, decision


def test_a_steady_rise_is_prewarmed_by_the_forecast_mean() -> None:
    # given a rate rising 18 jobs/s every minute, and a forecast of its mean (z = 0)
    config = replace(CONFIG, forecast_z=0.0)
    clock, decision = _ramp(config, minutes=20)
    now_rate = 50.0 + (20 * 60 - config.interval_s) * 0.3
    # then the workers are there for the rate a cold start from now, not just today's
    later = now_rate + 0.3 * (SERVICE.cold_start_s + config.interval_s)
    assert Reason.FORECAST in decision.reasons["jobs"]
    assert _needed(later) > _needed(now_rate) + 3
    assert clock.replicas >= _needed(later)


def test_a_flat_noisy_load_is_not_paid_for_twice_at_z_0() -> None:
    # given a flat load that wobbles from one minute to the next, for half an hour
    rates = [100.0, 130.0, 90.0, 120.0, 80.0] * 6

    def replicas(z: float) -> list[int]:
        clock, seen = FakeClock(replace(CONFIG, forecast_z=z)), []
        for rate in rates:
            for _ in range(30):  # a minute of decisions each
                clock.step(rate)
                seen.append(clock.replicas)
        return seen[len(seen) // 2 :]

    mean, banded = replicas(0.0), replicas(2.0)
    # then the forecast's mean never asks for more than the wobble's top needs, while
    # its band (z = 2) keeps more workers on the same load all along
    assert max(mean) <= math.ceil(_needed(130.0) * (1 + CONFIG.up_headroom)) + 1
    assert sum(banded) > 1.05 * sum(mean)


def _settle(clock: FakeClock, rate: float, seconds: float) -> None:
    for _ in range(int(seconds / clock.config.interval_s)):
        clock.step(rate)


def _rate_for(workers: float) -> float:
    """The highest rate (a tenth of a request a second apart) that ``workers`` serve."""
    rate = 0.0
    while _needed(rate + 0.1) <= workers:
        rate += 0.1
    return rate


# the tests of the scale-down bands: no burst reserve, no seasonal forecast
BANDS = replace(CONFIG, forecast_season=1, reserve_min=10.0, hysteresis_half_life_s=1e9)


def _after_a_rise(config: PolicyConfig = BANDS) -> FakeClock:
    clock = FakeClock(config)
    _settle(clock, 150.0, 600)
    _settle(clock, 220.0, 600)
    assert clock.state["jobs"].moved == 1
    return clock


def _after_a_fall(config: PolicyConfig = BANDS) -> FakeClock:
    clock = FakeClock(config)
    _settle(clock, 400.0, 600)
    _settle(clock, 220.0, 1200)
    assert clock.state["jobs"].moved == -1
    return clock


def test_a_small_excess_after_a_rise_is_held_and_after_a_fall_is_shed() -> None:
    """The first step down after a rise is a reversal and needs a wide excess (40 %); a
    step that goes on down reverses nothing and needs only a narrow one (5 %)."""
    for clock, held in ((_after_a_rise(), True), (_after_a_fall(), False)):
        before = clock.replicas
        # 20 % fewer workers needed (with the scale-up's headroom)
        less = _rate_for(before * 0.8 / (1 + BANDS.up_headroom))
        _settle(clock, less, 900)
        if held:
            assert clock.replicas == before
        else:
            assert _needed(less) <= clock.replicas < before


def test_the_band_after_a_rise_narrows_the_longer_the_excess_lasts() -> None:
    clock = _after_a_rise(replace(BANDS, hysteresis_half_life_s=1800.0))
    high, rose_at = clock.replicas, clock.state["jobs"].moved_at
    # the need falls 30 % below the replicas: inside the band (0.4 halving every 1,800 s
    # held) until about 740 s after the rise
    less = _rate_for(high * 0.7)
    _settle(clock, less, rose_at + 600 - clock.now)
    assert clock.replicas == high
    _settle(clock, less, 600)
    assert clock.replicas < high


def test_no_step_down_smaller_than_a_share_of_the_maximum_but_an_idle_pool_empties() -> None:
    big = replace(SERVICE, max_replicas=5000)  # 1 % of it: 50 workers
    clock = _after_a_fall(replace(BANDS, services=(big,)))
    settled = clock.replicas
    # 20 % less is past the 5 % band, but fewer than 50 workers: held
    less = _rate_for(settled * 0.8 / (1 + BANDS.up_headroom))
    assert settled * 0.2 < 50
    _settle(clock, less, 900)
    assert clock.replicas == settled
    # no load at all: down to the minimum, however small the last steps
    _settle(clock, 0.0, 1800)
    assert clock.replicas == SERVICE.min_replicas
