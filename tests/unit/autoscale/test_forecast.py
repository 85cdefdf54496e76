"""The incremental Holt-Winters: follows a trend, learns a season, bounds from above."""

from __future__ import annotations

import pytest

from pixelmill.autoscale import forecast as hw


def _feed(model: hw.HoltWinters, values: list[float], bucket_s: float) -> hw.HoltWinters:
    for i, value in enumerate(values):
        model = hw.observe(model, i * bucket_s, value)
    return hw.observe(model, len(values) * bucket_s, values[-1])


def test_no_forecast_before_a_full_bucket() -> None:
    model = hw.observe(hw.start(60.0, 10), 0.0, 5.0)
    assert hw.forecast(model, 60.0) is None


def test_a_ramp_is_forecast_to_keep_rising() -> None:
    values = [100.0 + 10 * i for i in range(40)]
    model = _feed(hw.start(60.0, 1000), values, 60.0)
    ahead = hw.forecast(model, 120.0)
    assert ahead is not None
    assert ahead.mean > values[-1]
    assert ahead.upper >= ahead.mean


def test_a_season_is_learned_after_one_season() -> None:
    shape = [10.0, 50.0, 10.0, 10.0]
    model = _feed(hw.start(1.0, 4, gamma=0.5), shape * 30, 1.0)
    # 120 buckets closed: the next one starts a season (low), the one after is the high one
    low, high = hw.forecast(model, 1.0, z=0.0), hw.forecast(model, 2.0, z=0.0)
    assert low is not None and high is not None
    assert low.mean == pytest.approx(10.0, rel=0.15)
    assert high.mean == pytest.approx(50.0, rel=0.15)


def test_a_single_spike_does_not_widen_the_band_for_long() -> None:
    flat = [100.0] * 30
    quiet = _feed(hw.start(1.0, 1000), flat, 1.0)
    spiked = _feed(hw.start(1.0, 1000), [*flat[:20], 1000.0, *flat[:10]], 1.0)
    quiet_ahead, spiked_ahead = hw.forecast(quiet, 1.0), hw.forecast(spiked, 1.0)
    assert quiet_ahead is not None and spiked_ahead is not None
    assert spiked_ahead.upper < 300.0
