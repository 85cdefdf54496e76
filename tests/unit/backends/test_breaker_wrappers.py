"""The backend wrappers of :mod:`pixelmill.backends.breaker`: while the breaker is open
the guarded calls fail fast (the backend is not touched), the cache turns them into
misses, and what is not guarded (readiness, queue depth, invalidation) still reaches
the backend."""

from __future__ import annotations

import pytest

from pixelmill.backends.breaker import CircuitBreaker
from pixelmill.backends.broker.base import RetryPolicy, TaskMessage
from pixelmill.backends.broker.breaker import BreakerBroker
from pixelmill.backends.broker.memory import InProcessBroker
from pixelmill.backends.cache.breaker import BreakerCache
from pixelmill.backends.cache.memory import MemoryCache
from pixelmill.backends.storage.breaker import BreakerStorage
from pixelmill.backends.storage.memory import MemoryStorage
from pixelmill.errors import BackendUnavailable, StorageError
from pixelmill.settings_healing import BreakerSettings

# no probe may come due while a test looks (however slow the machine is)
POLICY = BreakerSettings(failure_rate=0.5, min_calls=2, window_s=60, reset_timeout_s=600)


def _opened(label: str) -> CircuitBreaker:
    breaker = CircuitBreaker(label, POLICY)

    def down() -> None:
        raise StorageError("connection refused")

    for _ in range(2):
        with pytest.raises(StorageError):
            breaker.call(down)
    assert breaker.state == "open"
    return breaker


def test_storage_reads_and_writes_fail_fast_while_open_but_ping_reaches_the_store() -> None:
    inner = MemoryStorage()
    inner.put("a/b", b"bytes")
    storage = BreakerStorage(inner, _opened("t-wrap-storage"))
    for call in (
        lambda: storage.get("a/b"),
        lambda: storage.put("a/c", b"new"),
        lambda: storage.exists("a/b"),
        lambda: storage.size("a/b"),
        lambda: storage.delete("a/b"),
        lambda: list(storage.list("a/")),
    ):
        with pytest.raises(BackendUnavailable) as refused:
            call()
        assert refused.value.status == 503
    assert list(inner.list("a/")) == ["a/b"]  # nothing written, nothing deleted
    storage.ping()  # readiness asks the real store


def test_storage_passes_calls_through_while_closed() -> None:
    storage = BreakerStorage(MemoryStorage(), CircuitBreaker("t-wrap-closed", POLICY))
    storage.put("k/1", b"one")
    assert storage.get("k/1") == b"one"
    assert storage.size("k/1") == 3
    assert list(storage.list("k/")) == ["k/1"]


def test_broker_publish_fails_fast_while_open_and_the_rest_is_the_brokers() -> None:
    policy = RetryPolicy(max_retries=2)
    inner = InProcessBroker(policy)
    broker = BreakerBroker(inner, _opened("t-wrap-broker"))
    with pytest.raises(BackendUnavailable):
        broker.publish("transform", TaskMessage("job-1", 0))
    assert broker.depth("transform") == 0  # not published, and depth is not refused
    assert broker.policy is policy
    assert broker.durable is False
    broker.ping()
    inner.publish("transform", TaskMessage("job-2", 0))
    assert broker.depth("transform") == 1


def test_cache_is_a_miss_while_open_and_invalidation_still_reaches_it() -> None:
    inner = MemoryCache()
    inner.set("k", b"cached")
    inner.set("stale", b"old")
    cache = BreakerCache(inner, _opened("t-wrap-cache"))
    assert cache.get("k") is None  # refused read: a miss, not an error
    cache.set("new", b"value")  # refused write: dropped
    assert inner.get("new") is None
    cache.delete("stale")  # invalidations are tried even while open
    assert inner.get("stale") is None
    assert inner.get("k") == b"cached"
