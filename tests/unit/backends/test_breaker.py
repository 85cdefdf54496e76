"""Circuit breakers: open on the failure rate, fail fast with 503 + Retry-After, let one
probe through when half-open, close on its success, and show their state as a metric."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from pixelmill.backends.breaker import CircuitBreaker
from pixelmill.errors import BackendUnavailable, NotFound, StorageError
from pixelmill.settings_healing import BreakerSettings

POLICY = BreakerSettings(failure_rate=0.5, min_calls=4, window_s=60, reset_timeout_s=0.2)


class Backend:
    """A fake remote call whose health the test switches."""

    def __init__(self) -> None:
        self.up = True
        self.calls = 0

    def fetch(self) -> str:
        self.calls += 1
        if not self.up:
            raise StorageError("connection refused")
        return "bytes"


def _gauge(label: str) -> float | None:
    return REGISTRY.get_sample_value("pixelmill_breaker_state", {"breaker": label})


def _wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_opens_on_failure_rate_and_then_fails_fast_with_retry_after() -> None:
    # no probe may come due while the test looks (however slow the machine is)
    breaker = CircuitBreaker("t-open", POLICY.model_copy(update={"reset_timeout_s": 600}))
    backend = Backend()
    for _ in range(2):
        breaker.call(backend.fetch)
    backend.up = False
    with pytest.raises(StorageError):
        breaker.call(backend.fetch)  # 1 of 3 failed: not enough calls yet
    with pytest.raises(StorageError):
        breaker.call(backend.fetch)  # 2 of 4 failed: 50 % -> opens
    assert breaker.state == "open"
    assert _gauge("t-open") == 2
    calls = backend.calls
    with pytest.raises(BackendUnavailable) as refused:
        breaker.call(backend.fetch)
    assert backend.calls == calls  # the dead backend was not even tried
    assert refused.value.status == 503
    assert refused.value.retry_after == POLICY.retry_after_s


def test_client_errors_do_not_open_it() -> None:
    breaker = CircuitBreaker("t-4xx", POLICY)

    def missing() -> None:
        raise NotFound("no such key")

    for _ in range(10):
        with pytest.raises(NotFound):
            breaker.call(missing)
    assert breaker.state == "closed"


def test_half_open_probe_closes_it_after_recovery() -> None:
    breaker = CircuitBreaker("t-probe", POLICY)
    backend = Backend()
    backend.up = False
    for _ in range(4):
        with pytest.raises(StorageError):
            breaker.call(backend.fetch)
    assert breaker.state == "open"
    backend.up = True
    # after reset_timeout the next call is the probe; it succeeds and closes the breaker
    _wait_until(lambda: _try(breaker, backend.fetch))
    assert breaker.state == "closed"
    assert _gauge("t-probe") == 0


def test_a_failed_probe_opens_it_again() -> None:
    breaker = CircuitBreaker("t-reprobe", POLICY)
    backend = Backend()
    backend.up = False
    for _ in range(4):
        with pytest.raises(StorageError):
            breaker.call(backend.fetch)
    calls = backend.calls
    _wait_until(lambda: _probe_ran(breaker, backend, calls))
    assert breaker.state == "open"


def test_only_one_probe_runs_while_half_open() -> None:
    breaker = CircuitBreaker("t-one-probe", POLICY)
    backend = Backend()
    backend.up = False
    for _ in range(4):
        with pytest.raises(StorageError):
            breaker.call(backend.fetch)
    inside, release = threading.Event(), threading.Event()

    def slow_probe() -> str:
        inside.set()
        release.wait(5)
        return "ok"

    def probe() -> None:
        _wait_until(lambda: _try(breaker, slow_probe))

    thread = threading.Thread(target=probe)
    thread.start()
    assert inside.wait(5)
    with pytest.raises(BackendUnavailable):  # a second caller is refused meanwhile
        breaker.call(backend.fetch)
    release.set()
    thread.join(5)
    assert breaker.state == "closed"


def test_calls_run_concurrently_while_closed() -> None:
    breaker = CircuitBreaker("t-concurrent", POLICY)
    both_inside = threading.Barrier(2, timeout=5)

    def meet() -> None:
        both_inside.wait()  # deadlocks (BrokenBarrierError) if calls were serialised

    threads = [threading.Thread(target=breaker.call, args=(meet,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(6)
    assert not both_inside.broken


def _try(breaker: CircuitBreaker, func: Callable[[], str]) -> bool:
    try:
        breaker.call(func)
    except BackendUnavailable:
        return False
    return True


def _probe_ran(breaker: CircuitBreaker, backend: Backend, calls_before: int) -> bool:
    with contextlib.suppress(BackendUnavailable, StorageError):
        breaker.call(backend.fetch)
    return backend.calls > calls_before
