"""Live metrics rows → the policy's observations (pure: rows and time are arguments)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from statistics import NormalDist

import pytest

from pixelmill.autoscale.queueing import size_for_slo
from pixelmill.services.autoscaler.observe import (
    DEFAULT_SERVICE,
    MAX_SIGMA,
    Reading,
    fit_service_time,
    observations,
)

NOW = 1_800_000_000.0


def reading(**over: object) -> Reading:
    base: dict[str, object] = {
        "at": NOW,
        # both lanes of transform; analyse idle
        "broker": [("transform", "normal", 7, 2), ("transform", "high", 1, 2)],
        "store": [
            ("transform", "queued", 8, datetime.fromtimestamp(NOW - 12, UTC)),
            ("transform", "running", 2, datetime.fromtimestamp(NOW - 20, UTC)),
        ],
        # 20 arrivals in the last 100 s, 5 of them in the last 5 s; 4 ended after 2 s
        "tasks": [("transform", NOW - 5 * i - 1, None, None, "queued") for i in range(20)]
        + [("transform", NOW - 300, NOW - 290.0, NOW - 288.0, "succeeded") for _ in range(4)],
        "replicas": {"transform": (3, 2), "analyse": (1, 1)},
    }
    base.update(over)
    return Reading(**base)  # type: ignore[arg-type]


def test_a_busy_queue_is_observed_from_broker_store_and_timings() -> None:
    seen = observations(reading(), ["transform"], window_s=100, short_window_s=5)
    obs = seen.services["transform"]
    assert obs is not None
    assert obs.queue_ready == 8  # both lanes
    assert obs.queue_unacked == obs.in_flight == 2
    assert obs.oldest_age_s == pytest.approx(12)
    assert obs.arrival_rate == pytest.approx(20 / 100)
    assert obs.short_rate == pytest.approx(1 / 5)
    assert obs.service.median_s == pytest.approx(2.0)
    assert (obs.replicas, obs.ready) == (3, 2)


def test_an_idle_queue_has_no_age_no_rate_and_the_default_service_time() -> None:
    seen = observations(reading(), ["analyse"], window_s=100, short_window_s=5)
    obs = seen.services["analyse"]
    assert obs is not None
    assert (obs.queue_ready, obs.oldest_age_s, obs.arrival_rate) == (0, 0.0, 0.0)
    assert obs.service == DEFAULT_SERVICE


@pytest.mark.parametrize("source", ["broker", "store", "tasks"])
def test_an_unreadable_source_makes_the_observation_missing(source: str) -> None:
    seen = observations(reading(**{source: None}), ["transform"], window_s=100, short_window_s=5)
    assert seen.services["transform"] is None


def test_an_unreadable_actuator_makes_the_observation_missing() -> None:
    seen = observations(
        reading(replicas={"transform": None}), ["transform"], window_s=100, short_window_s=5
    )
    assert seen.services["transform"] is None


def lognormal_sample(median: float, sigma: float, n: int = 199) -> list[float]:
    """``n`` run times at evenly spaced quantiles of a lognormal."""
    normal = NormalDist()
    return [median * math.exp(sigma * normal.inv_cdf((i + 0.5) / n)) for i in range(n)]


def test_the_service_time_fit_is_lognormal() -> None:
    fitted = fit_service_time(lognormal_sample(2.0, 0.8))
    assert fitted.median_s == pytest.approx(2.0)
    assert fitted.sigma == pytest.approx(0.8, rel=0.03)


def sized(tasks: list[tuple[str, float, float | None, float | None, str]]) -> int:
    """Workers the live policy's queueing model asks for the observation of ``tasks``:
    3 arrivals in the 120-s window, job start within 60 s for 99.9 %."""
    arrivals = [("analyse", NOW - 10.0 * i, None, None, "queued") for i in range(3)]
    seen = observations(
        reading(tasks=arrivals + tasks), ["analyse"], window_s=120, short_window_s=10
    )
    obs = seen.services["analyse"]
    assert obs is not None
    return size_for_slo(3 / 120, obs.service, 60.0, "queue_wait", 0.999)


def test_failed_and_cancelled_tasks_do_not_size_the_queue() -> None:
    # the tester's live run: two 23-30 s analyses, one that failed at once on a missing
    # input (14 ms) and one cancelled before it did anything: 2-3 workers, not 382
    ran = [
        ("analyse", NOW - 60, NOW - 59.0, NOW - 59.0 + 23.21, "succeeded"),
        ("analyse", NOW - 50, NOW - 49.0, NOW - 49.0 + 29.90, "succeeded"),
    ]
    broken = [
        ("analyse", NOW - 40, NOW - 39.0, NOW - 39.0 + 0.014, "failed"),
        ("analyse", NOW - 30, NOW - 29.0, NOW - 29.0 + 0.001, "cancelled"),
    ]
    assert sized(ran + broken) == sized(ran) <= 3


def test_a_few_run_times_fit_no_spread() -> None:
    # three successes, one of them instant: the median with a modest assumed spread
    fitted = fit_service_time([23.21, 29.90, 0.014])
    assert fitted.median_s == pytest.approx(23.21)
    assert fitted.mean_s < 30


def test_a_few_very_short_runs_cannot_blow_the_mean_up() -> None:
    # eighteen 20-37 s runs and two that ended at once: the fit stays among the runs
    runs = [20.0 + i for i in range(18)] + [0.014, 0.002]
    fitted = fit_service_time(runs)
    assert fitted.median_s == pytest.approx(28.5, rel=0.05)
    assert fitted.mean_s < max(runs)


def test_a_heavy_tailed_mix_keeps_its_spread_up_to_the_bound() -> None:
    # a log-spread of 2 (the standard trace's job mix) is fitted as it is ...
    assert fit_service_time(lognormal_sample(0.13, 2.0)).sigma == pytest.approx(2.0, rel=0.1)
    # ... and a wider one is held at the bound
    assert fit_service_time(lognormal_sample(0.13, 5.0)).sigma == MAX_SIGMA
