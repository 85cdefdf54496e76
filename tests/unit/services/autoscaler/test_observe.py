"""Live metrics rows → the policy's observations (pure: rows and time are arguments)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from pixelmill.services.autoscaler.observe import (
    DEFAULT_SERVICE,
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
        "tasks": [("transform", NOW - 5 * i - 1, None, None) for i in range(20)]
        + [("transform", NOW - 300, NOW - 290.0, NOW - 288.0) for _ in range(4)],
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


def test_the_service_time_fit_is_lognormal() -> None:
    durations = [math.exp(x) for x in (-1.0, 0.0, 1.0)]
    fitted = fit_service_time(durations)
    assert fitted.median_s == pytest.approx(1.0)
    assert fitted.sigma == pytest.approx(math.sqrt(2 / 3))
