"""The composition root: the only place that picks implementations from settings.

Services receive what they need from a :class:`Container`; they never construct
backends themselves. A new backend is one module plus one line in a ``make_*`` here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelmill.backends.broker.base import Broker
from pixelmill.backends.cache.base import Cache
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.keys import KeyRepository
from pixelmill.backends.storage.base import Storage
from pixelmill.errors import InvalidInput
from pixelmill.runtime.ml_services import install_ml
from pixelmill.services.images import ImageService
from pixelmill.settings import Settings


def make_storage(settings: Settings) -> Storage:
    url = settings.storage_url
    if url.startswith("memory://"):
        from pixelmill.backends.storage.memory import MemoryStorage

        return MemoryStorage()
    if url.startswith("file://"):
        from pixelmill.backends.storage.filesystem import FilesystemStorage

        return FilesystemStorage(Path(url.removeprefix("file://")))
    if url.startswith("s3://"):
        from pixelmill.backends.storage.s3 import S3Storage

        s3 = settings.storage
        return S3Storage(
            bucket=url.removeprefix("s3://").strip("/"),
            endpoint_url=s3.s3_endpoint_url,
            region=s3.s3_region,
            access_key=s3.s3_access_key,
            secret_key=s3.s3_secret_key,
            prefix=s3.s3_prefix,
        )
    raise InvalidInput(f"unknown storage url {url!r} (memory://, file://DIR or s3://BUCKET)")


def make_cache(settings: Settings) -> Cache:
    url = settings.cache.url
    if url.startswith("memory://"):
        from pixelmill.backends.cache.memory import MemoryCache

        return MemoryCache(settings.cache.max_bytes, settings.cache.ttl_seconds)
    if url.startswith("none://"):
        from pixelmill.backends.cache.memory import NullCache

        return NullCache()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from pixelmill.backends.cache.redis import RedisCache

        return RedisCache(url, default_ttl=settings.cache.ttl_seconds)
    raise InvalidInput(f"unknown cache url {url!r} (memory://, redis://..., none://)")


def make_broker(settings: Settings) -> Broker:
    from pixelmill.backends.broker.base import RetryPolicy

    b = settings.broker
    policy = RetryPolicy(
        max_retries=b.max_retries,
        min_backoff_s=b.min_backoff_s,
        max_backoff_s=b.max_backoff_s,
        delivery_limit=b.delivery_limit,
    )
    if b.url.startswith("memory://"):
        from pixelmill.backends.broker.memory import InProcessBroker

        return InProcessBroker(policy)
    if b.url.startswith(("amqp://", "amqps://")):
        from pixelmill.backends.broker.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(
            b.url, namespace=b.namespace, policy=policy, confirm=b.confirm_publish
        )
    raise InvalidInput(f"unknown broker url {b.url!r} (memory:// or amqp://...)")


def install_jobs(container: Container) -> None:
    """Wire the job service; an in-process broker also runs jobs in this process, and
    the retention sweep (workers run it in distributed mode)."""
    from pixelmill.backends.metadata.changes import make_job_changes
    from pixelmill.services.jobs.service import JobService

    settings = container.settings
    changes = make_job_changes(settings.database_url, notify=settings.jobs.events_notify)
    jobs = JobService(container, make_broker(settings), changes)
    container.extras["jobs"] = jobs
    if not getattr(jobs.broker, "durable", True):
        container.extras.setdefault("on_startup", []).append(jobs.start_embedded)
        container.extras.setdefault("on_startup", []).append(jobs.start_retention)
        container.extras.setdefault("on_shutdown", []).append(jobs.stop)


@dataclass
class Container:
    """Everything the services need, built once per process from settings."""

    settings: Settings
    db: Database
    storage: Storage
    cache: Cache
    images: ImageRepository
    keys: KeyRepository
    image_service: ImageService
    #: extension point for later services (jobs, models, ...), keyed by name
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        close = getattr(self.cache, "close", None)
        if close:
            close()
        for extra in self.extras.values():
            stop = getattr(extra, "close", None)
            if stop:
                stop()
        self.db.dispose()


def build_container(settings: Settings, *, migrate: bool = True) -> Container:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.render.concurrency:
        import pyvips

        pyvips.concurrency_set(settings.render.concurrency)
    db = Database(
        settings.database_url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    if migrate:
        db.upgrade()
    storage = make_storage(settings)
    cache = make_cache(settings)
    images = ImageRepository(db)
    service = ImageService(
        storage=storage,
        images=images,
        cache=cache,
        render=settings.render,
        cache_ttl=settings.cache.ttl_seconds,
    )
    container = Container(
        settings=settings,
        db=db,
        storage=storage,
        cache=cache,
        images=images,
        keys=KeyRepository(db),
        image_service=service,
    )
    install_jobs(container)
    install_ml(container)
    return container
