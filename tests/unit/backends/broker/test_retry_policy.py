"""One retry policy for both brokers: when to give up, and how long to wait."""

from __future__ import annotations

import pytest

from pixelmill.backends.broker.base import RetryPolicy


def test_a_task_is_retried_until_its_retries_are_used_up_then_dead_lettered() -> None:
    policy = RetryPolicy(max_retries=3, min_backoff_s=0.1, max_backoff_s=10.0)
    assert [policy.retry_in_s(n) is not None for n in range(5)] == [True, True, True, False, False]
    # a job kind's own limit wins over the policy's
    assert policy.retry_in_s(1, max_retries=1) is None
    assert policy.retry_in_s(5, max_retries=9) is not None


@pytest.mark.parametrize("retries", range(8))
def test_the_wait_doubles_from_the_minimum_and_never_passes_the_maximum(retries: int) -> None:
    policy = RetryPolicy(max_retries=100, min_backoff_s=0.1, max_backoff_s=5.0)
    base = 0.1 * 2**retries
    for _ in range(20):
        wait = policy.retry_in_s(retries)
        assert wait is not None
        assert wait <= 5.0
        if base * 2 <= 5.0:  # below the cap: jittered up to twice the base
            assert base - 0.001 <= wait <= 2 * base + 0.001


def test_dramatiq_gets_the_same_bounds_in_milliseconds() -> None:
    assert RetryPolicy(min_backoff_s=0.5, max_backoff_s=30.0).backoff_ms() == (500, 30_000)
