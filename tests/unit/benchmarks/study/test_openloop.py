"""The open-loop schedule: fixed before the run, at each step's rate."""

import itertools

import pytest
from benchmarks.study.openloop import Result, Sample, schedule


def test_constant_rate_is_evenly_spaced() -> None:
    times = schedule([(10, 1)])
    assert len(times) == 10
    assert times[0] == 0 and times[-1] == pytest.approx(0.9)


def test_steps_follow_each_other_and_idle_steps_keep_time() -> None:
    times = schedule([(2, 1), (0, 1), (4, 1)])
    assert times == [0.0, 0.5, 2.0, 2.25, 2.5, 2.75]


def test_poisson_arrivals_keep_the_mean_rate_and_are_seeded() -> None:
    times = schedule([(200, 10)], poisson=True, seed=3)
    assert len(times) == pytest.approx(2000, rel=0.1)
    assert times == schedule([(200, 10)], poisson=True, seed=3)
    assert all(a <= b for a, b in itertools.pairwise(times))


def test_latency_counts_from_the_intended_start() -> None:
    # a request that had to wait 0.4 s for the client still waited: 0.5 s, not 0.1 s
    result = Result()
    result.add(Sample("render", intended=1.0, started=1.4, ended=1.5, status=200))
    result.add(Sample("render", intended=1.0, started=1.0, ended=1.1, status=503))
    assert result.percentile_ms(50) == pytest.approx(500, rel=1e-2)
    assert result.failed() == 1
