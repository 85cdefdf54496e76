"""The composition root: the only place that picks implementations from settings.

Services receive what they need from a :class:`Container`; they never construct
backends themselves. A new backend is one module plus one line in a ``make_*`` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelmill.backends.broker.base import Broker
from pixelmill.backends.cache.base import Cache
from pixelmill.backends.metadata.changes import JobChanges, make_job_changes
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import EventLog
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.jobs import JobRepository, JobStore
from pixelmill.backends.metadata.keys import KeyRepository
from pixelmill.backends.metadata.messages import MessageRepository
from pixelmill.backends.metadata.models import DatasetRepository, ModelRepository
from pixelmill.backends.metadata.studies import StudyRepository
from pixelmill.backends.metadata.study_images import StudyImageRepository
from pixelmill.backends.metadata.users import UserRepository
from pixelmill.backends.storage.base import Storage
from pixelmill.errors import InvalidInput
from pixelmill.ml.dataset_limits import DatasetLimits
from pixelmill.services.images import ImageService
from pixelmill.services.inference.service import InferenceService, Predictor
from pixelmill.services.jobs.daemon import JobDaemon
from pixelmill.services.jobs.deps import JobDeps
from pixelmill.services.jobs.kinds import JobKinds
from pixelmill.services.jobs.pipeline_kind import pipeline_kind
from pixelmill.services.jobs.service import JobService
from pixelmill.services.model_registry import ModelRegistry
from pixelmill.services.trainer.kind import train_kind
from pixelmill.services.trainer.service import TrainerService
from pixelmill.services.workspace.access import Access
from pixelmill.services.workspace.accounts import Accounts
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


@dataclass
class Container:
    """Everything the services need, built once per process from settings.

    Provides the gateway's :class:`~pixelmill.services.gateway.deps.GatewayDeps`;
    worker processes use ``job_daemon``. Closed by whoever built it."""

    settings: Settings
    db: Database
    storage: Storage
    cache: Cache
    images: ImageRepository
    keys: KeyRepository
    image_service: ImageService
    broker: Broker
    changes: JobChanges
    job_store: JobStore
    jobs: JobService
    job_daemon: JobDaemon
    models: ModelRegistry
    inference: InferenceService
    trainer: TrainerService
    users: UserRepository
    events: EventLog
    accounts: Accounts
    studies: StudyRepository
    study_images: StudyImageRepository
    access: Access
    messages: MessageRepository

    @property
    def runs_jobs_in_process(self) -> bool:
        """True with the in-process broker: this process runs the jobs it accepts."""
        return not self.broker.durable

    def readiness_checks(self) -> dict[str, Callable[[], None]]:
        return {
            "database": self.db.ping,
            "storage": self.storage.ping,
            "cache": self.cache.ping,
            "jobs": self.broker.ping,
        }

    def startup(self) -> None:
        """An embedded gateway recovers unfinished tasks, runs jobs and sweeps expired
        ones in its own process; a distributed one leaves all that to workers."""
        if self.runs_jobs_in_process:
            self.job_daemon.start_embedded()
            self.job_daemon.start_retention()

    def shutdown(self) -> None:
        if self.runs_jobs_in_process:
            self.job_daemon.stop()

    def close(self) -> None:
        self.job_daemon.close()
        self.jobs.close()
        self.inference.close()
        self.broker.close()
        self.changes.close()
        self.job_store.dispose()
        self.cache.close()
        self.db.dispose()


def dataset_limits(settings: Settings) -> DatasetLimits:
    """A dataset archive gets the limits of ``POST /v1/images`` per image (bytes and
    pixels) and ``ml.max_dataset_bytes`` for all its members uncompressed."""
    return DatasetLimits(
        max_member_bytes=settings.server.max_upload_bytes,
        max_total_bytes=settings.ml.max_dataset_bytes,
        max_image_pixels=settings.render.max_pixels,
    )


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
    models = ModelRegistry(storage=storage, models=ModelRepository(db))
    inference: InferenceService | None = None

    def resolve_model(ref: str) -> Predictor:
        # the image service and inference use each other (inference reads and stores
        # images; the segment op renders with a model): bound once both exist, below
        assert inference is not None
        return inference.resolver(ref)

    image_service = ImageService(
        storage=storage,
        images=images,
        cache=cache,
        render=settings.render,
        cache_ttl=settings.cache.ttl_seconds,
        resolve_model=resolve_model,
    )
    inference = InferenceService(registry=models, images=image_service, settings=settings.ml)
    trainer = TrainerService(
        storage=storage,
        datasets=DatasetRepository(db),
        registry=models,
        settings=settings.ml,
        limits=dataset_limits(settings),
    )
    kinds = JobKinds(
        [
            pipeline_kind(image_service, default_quality=settings.render.default_quality),
            train_kind(trainer),
        ],
        plugins=settings.jobs.plugins,
    )
    broker = make_broker(settings)
    changes = make_job_changes(settings.database_url, notify=settings.jobs.events_notify)
    job_store = JobRepository(db)
    job_deps = JobDeps(
        settings=settings.jobs,
        store=job_store,
        broker=broker,
        kinds=kinds,
        storage=storage,
        images=image_service,
        changes=changes,
        data_dir=settings.data_dir,
    )
    return Container(
        settings=settings,
        db=db,
        storage=storage,
        cache=cache,
        images=images,
        keys=KeyRepository(db),
        image_service=image_service,
        broker=broker,
        changes=changes,
        job_store=job_store,
        jobs=JobService(job_deps),
        job_daemon=JobDaemon(job_deps),
        models=models,
        inference=inference,
        trainer=trainer,
        **workspace(db, images, settings),
    )


def workspace(db: Database, images: ImageRepository, settings: Settings) -> dict[str, Any]:
    """The research workspace's parts: users and accounts, studies, access, events."""
    users = UserRepository(db)
    events = EventLog(db)
    studies = StudyRepository(db)
    study_images = StudyImageRepository(db)
    return {
        "users": users,
        "events": events,
        "accounts": Accounts(users, events, settings.workspace),
        "studies": studies,
        "study_images": study_images,
        "access": Access(studies=studies, study_images=study_images, images=images, events=events),
        "messages": MessageRepository(db),
    }
