"""The robust z-score detector: quiet on noise, raises a step change within a few
samples, once per episode, and does not learn a lasting fault as normal."""

from __future__ import annotations

import numpy as np

from pixelmill.ml.anomaly import RobustZ


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(0.05), 0.2, n)


def test_no_alarm_on_a_day_of_noise() -> None:
    detector = RobustZ(floor=0.005, relative=0.1)
    raised = [detector.update(float(v)).raised for v in _noise(5760)]
    assert sum(raised) == 0


def test_a_step_is_raised_after_persistence_samples_and_once() -> None:
    detector = RobustZ(floor=0.005, relative=0.1, persistence=2)
    for v in _noise(100):
        detector.update(float(v))
    verdicts = [detector.update(float(v) * 4) for v in _noise(30, seed=1)]
    first = next(i for i, v in enumerate(verdicts) if v.raised)
    assert first == 1  # the second anomalous sample in a row
    assert sum(v.raised for v in verdicts) == 1  # one anomaly for the whole episode
    assert all(v.anomalous for v in verdicts)  # the fault is never learnt as normal


def test_a_flat_zero_series_ignores_tiny_blips_but_not_a_spike() -> None:
    detector = RobustZ(floor=0.01, relative=0.0, persistence=1)
    for _ in range(50):
        detector.update(0.0)
    assert not detector.update(0.02).raised  # one odd 5xx in a hundred
    assert detector.update(0.5).raised  # half the requests failing
