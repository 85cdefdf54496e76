"""The rollback rule: which served record breaches a promotion's thresholds, and why."""

from __future__ import annotations

from collections import deque

from pixelmill.services.inference.rollback import Served, judge
from pixelmill.settings_healing import RollbackSettings

POLICY = RollbackSettings(min_predictions=10, max_error_rate=0.2, max_latency_p95_s=1.0)


def _served(ok: int, errors: int, latency: float = 0.1, drift: float = 0.0) -> Served:
    return Served(ok, errors, deque([latency] * ok), drift, drift_window=ok)


def test_nothing_is_judged_before_min_predictions() -> None:
    assert judge(_served(2, 7), POLICY, drift_threshold=0.25, drift_min=5) is None


def test_each_threshold_names_its_breach() -> None:
    def verdict(served: Served) -> str | None:
        found = judge(served, POLICY, drift_threshold=0.25, drift_min=5)
        return None if found is None else found[0]

    assert verdict(_served(20, 2)) is None  # 9 % errors, fast, no drift: it stays
    assert verdict(_served(10, 5)) == "error_rate"  # 33 % > 20 %
    assert verdict(_served(20, 0, latency=2.5)) == "latency"  # p95 2.5 s > 1 s
    assert verdict(_served(20, 0, drift=0.9)) == "drift"  # PSI 0.9 > 0.25


def test_an_explicit_drift_limit_wins_over_the_serving_threshold() -> None:
    policy = POLICY.model_copy(update={"max_drift": 1.5})
    assert judge(_served(20, 0, drift=0.9), policy, drift_threshold=0.25, drift_min=5) is None
