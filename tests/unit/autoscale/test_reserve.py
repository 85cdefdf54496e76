"""The burst reserve: learns the jumps that outrun a cold start, forgets them slowly,
ignores noise and leaves the big ones to panic mode."""

from __future__ import annotations

import math

import pytest

from pixelmill.autoscale import reserve

KNOBS = {"horizon_s": 12.0, "window_s": 2.0, "decay_s": 600.0, "cap": 0.5}


def _feed(rates: list[float], start: float = 0.0) -> reserve.Jumps:
    jumps = reserve.Jumps()
    for i, rate in enumerate(rates):
        jumps = reserve.observe(jumps, start + 2.0 * i, rate, **KNOBS)
    return jumps


def test_a_jump_within_a_cold_start_becomes_headroom() -> None:
    jumps = _feed([1000.0] * 10 + [1300.0] * 3)
    # +30 %, less three standard deviations of the counts' noise
    noise = 3 * math.sqrt(2 / (1000.0 * 2.0))
    assert jumps.reserve == pytest.approx(0.3 * 1000 / 1000 - noise, abs=0.02)


def test_noise_alone_gives_no_reserve() -> None:
    assert _feed([1000.0, 1040.0, 985.0, 1020.0, 990.0] * 4).reserve == 0.0


def test_a_slow_ramp_gives_no_reserve() -> None:
    # +1 % every 2 s is +6 % a cold start: well within what a decision catches up with
    assert _feed([1000.0 * 1.01**i for i in range(30)]).reserve < 0.01


def test_bursts_beyond_the_cap_are_left_to_panic() -> None:
    assert _feed([1000.0] * 5 + [3000.0] * 3).reserve == 0.0


def test_the_reserve_fades() -> None:
    jumps = _feed([1000.0] * 10 + [1300.0] * 3)
    later = reserve.observe(jumps, jumps.at + 600.0, 1300.0, **KNOBS)  # type: ignore[operator]
    assert later.reserve == pytest.approx(jumps.reserve / math.e, rel=0.01)
