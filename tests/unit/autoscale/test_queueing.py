"""Erlang C against textbook values; Allen-Cunneen and sizing behave as promised."""

from __future__ import annotations

import math

import pytest

from pixelmill.autoscale.queueing import (
    erlang_c,
    residual_tail,
    size_for_slo,
    slo_attainment,
    wait_tail,
)
from pixelmill.autoscale.types import ServiceTime

#: a lognormal whose squared CV is 1, like the exponential: Allen-Cunneen = Erlang C
EXPONENTIAL_LIKE = ServiceTime(median_s=1.0 / math.sqrt(2), sigma=math.sqrt(math.log(2)))


def _erlang_c_by_recursion(c: int, a: float) -> float:
    """Erlang B by its textbook recursion, then C from B."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1 - rho * (1 - b))


@pytest.mark.parametrize(
    ("c", "a", "expected"),
    [
        (1, 0.5, 0.5),  # M/M/1: an arrival waits with probability rho
        (2, 1.0, 1 / 3),
        (3, 2.0, 4 / 9),
        (10, 8.0, 0.4092),  # the classic call-centre table value
    ],
)
def test_erlang_c_matches_textbook_values(c: int, a: float, expected: float) -> None:
    assert float(erlang_c(c, a)) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("c", "a"), [(50, 40.0), (500, 480.0), (1200, 1150.0)])
def test_erlang_c_matches_the_recursion_at_scale(c: int, a: float) -> None:
    assert float(erlang_c(c, a)) == pytest.approx(_erlang_c_by_recursion(c, a), rel=1e-9)


def test_an_unstable_queue_always_waits() -> None:
    assert float(erlang_c(10, 10.0)) == 1.0
    assert float(erlang_c(10, 12.0)) == 1.0


def test_wait_tail_is_mmc_for_exponential_like_service() -> None:
    # given M/M/3 with lam 2, mu 1 (mean service 1 s): P(W > t) = C exp(-(c mu - lam) t)
    assert EXPONENTIAL_LIKE.mean_s == pytest.approx(1.0)
    assert EXPONENTIAL_LIKE.scv == pytest.approx(1.0)
    for t in (0.0, 0.5, 2.0):
        assert float(wait_tail(3, 2.0, EXPONENTIAL_LIKE, t)) == pytest.approx(
            4 / 9 * math.exp(-1.0 * t)
        )


def test_more_variable_service_waits_longer() -> None:
    calm, wild = ServiceTime(0.1, 0.3), ServiceTime(0.1, 1.5)
    lam = 0.9 * 20 / calm.mean_s
    assert float(wait_tail(20, lam, wild, 0.1)) > float(wait_tail(20, lam, calm, 0.1))


def test_sizing_meets_the_target_with_the_fewest_workers() -> None:
    render = ServiceTime(0.0305, 0.656)
    for lam in (5.0, 200.0, 5000.0):
        c = size_for_slo(lam, render, 0.15, "latency", 0.999)
        ceiling = float(slo_attainment(10**6, lam, render, 0.15, "latency"))
        assert ceiling - float(slo_attainment(c, lam, render, 0.15, "latency")) <= 1e-3
        assert ceiling - float(slo_attainment(c - 1, lam, render, 0.15, "latency")) > 1e-3 or (
            c - 1 <= lam * render.mean_s
        )


def test_queueing_economy_of_scale() -> None:
    # Erlang C: the bigger the pool, the higher the utilisation the same SLO allows
    jobs = ServiceTime(0.13, 2.0)
    small = size_for_slo(10.0, jobs, 10.0, "queue_wait", 0.999)
    large = size_for_slo(1000.0, jobs, 10.0, "queue_wait", 0.999)
    assert 1000.0 * jobs.mean_s / large > 10.0 * jobs.mean_s / small
    assert size_for_slo(0.0, jobs, 10.0, "queue_wait", 0.999) == 0


def test_residual_tail() -> None:
    jobs = ServiceTime(0.13, 2.0)
    assert residual_tail(jobs, 0.0) == pytest.approx(1.0)
    assert 0 < residual_tail(jobs, 30.0) < residual_tail(jobs, 1.0) < 1
