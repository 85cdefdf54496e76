"""The self-healing part of the composition root (:mod:`pixelmill.runtime.container`):
which backends get a circuit breaker, and the feedback loops (automatic model rollback,
the anomaly monitor). Settings: ``healing`` (:mod:`pixelmill.settings_healing`)."""

from __future__ import annotations

from pixelmill.backends.breaker import Breakers
from pixelmill.backends.broker.base import Broker
from pixelmill.backends.cache.base import Cache
from pixelmill.backends.metadata.events import EventLog
from pixelmill.backends.storage.base import Storage
from pixelmill.services.anomaly import AnomalyMonitor
from pixelmill.services.inference.rollback import RollbackWatcher
from pixelmill.services.inference.service import InferenceService
from pixelmill.settings import Settings


def guard_storage(settings: Settings, storage: Storage, breakers: Breakers) -> Storage:
    """S3 behind the ``storage`` breaker (a local folder or memory is left as it is)."""
    breaker = breakers.get("storage")
    if breaker is None or not settings.storage_url.startswith("s3://"):
        return storage
    from pixelmill.backends.storage.breaker import BreakerStorage

    return BreakerStorage(storage, breaker)


def guard_cache(cache: Cache, breakers: Breakers) -> Cache:
    """Redis behind the ``cache`` breaker; the cache must raise on failure then
    (``RedisCache(raise_errors=breakers.policy.enabled)``)."""
    from pixelmill.backends.cache.redis import RedisCache

    breaker = breakers.get("cache")
    if breaker is None or not isinstance(cache, RedisCache):
        return cache
    from pixelmill.backends.cache.breaker import BreakerCache

    return BreakerCache(cache, breaker)


def guard_broker(broker: Broker, breakers: Breakers) -> Broker:
    """RabbitMQ publishing behind the ``broker`` breaker (the in-process broker cannot
    be unreachable)."""
    breaker = breakers.get("broker")
    if breaker is None or not broker.durable:
        return broker
    from pixelmill.backends.broker.breaker import BreakerBroker

    return BreakerBroker(broker, breaker)


def healing(
    settings: Settings, inference: InferenceService, events: EventLog, breakers: Breakers
) -> AnomalyMonitor | None:
    """Switch on what ``healing`` asks of a process: a breaker per loaded model version
    and automatic rollback of a breaching promotion (both on ``inference``), and the
    anomaly monitor (returned, or ``None``)."""
    inference.breakers = breakers
    if settings.healing.rollback.enabled:
        inference.watcher = RollbackWatcher(
            registry=inference.registry,
            events=events,
            policy=settings.healing.rollback,
            drift_threshold=settings.ml.drift_threshold,
            drift_min=settings.ml.drift_min_samples,
        )
    if not settings.healing.anomaly.enabled:
        return None
    return AnomalyMonitor(settings.healing.anomaly, events=events)
