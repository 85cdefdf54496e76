"""The study's Universal Scalability Law fit and the papers' model, on known curves."""

import math

import pytest
from benchmarks.study import models


def test_fit_recovers_sigma_and_kappa_of_a_known_curve() -> None:
    # given throughputs made by a USL with known parameters
    ns = [1, 2, 4, 8, 16]
    xs = [models.usl(n, 100.0, 0.08, 0.002) for n in ns]
    # when fitted
    fit = models.fit_usl(ns, xs)
    # then the parameters come back, and so does the peak
    assert fit.lam == pytest.approx(100.0, rel=1e-3)
    assert fit.sigma == pytest.approx(0.08, abs=1e-3)
    assert fit.kappa == pytest.approx(0.002, abs=1e-4)
    assert fit.peak_n() == pytest.approx(math.sqrt(0.92 / 0.002), rel=1e-2)


def test_linear_scaling_fits_zero_contention_and_has_no_peak() -> None:
    fit = models.fit_usl([1, 2, 4], [50.0, 100.0, 200.0])
    assert fit.sigma == pytest.approx(0, abs=1e-3)
    assert fit.kappa == pytest.approx(0, abs=1e-5)
    assert models.UslFit(lam=50, sigma=0, kappa=0).workers_for(1000) == 20


def test_a_target_past_the_peak_is_unreachable() -> None:
    fit = models.UslFit(lam=100, sigma=0.1, kappa=0.01)
    assert fit.workers_for(10 * fit.throughput(fit.peak_n())) is None


def test_the_papers_models_and_the_response_time_law() -> None:
    assert models.paper_monolith_ms(10, 5, 2) == 25
    assert models.paper_microservices_ms(10, 5) == 5
    assert models.fit_line([1, 2, 3], [7, 9, 11]) == pytest.approx((5, 2))
    # one user waits only the demand; many users queue on the cores
    assert models.response_bound_ms(1, 10, 2, 0) == 10
    assert models.response_bound_ms(40, 10, 2, 100) == 100
