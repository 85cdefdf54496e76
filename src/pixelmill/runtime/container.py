"""The composition root: the only place that picks implementations from settings.

Services receive what they need from a :class:`Container`; they never construct
backends themselves. A new backend is one module plus one line in a ``make_*`` here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from pixelmill.backends.breaker import Breakers
from pixelmill.backends.broker.base import Broker
from pixelmill.backends.cache.base import Cache
from pixelmill.backends.metadata.annotations import AnnotationRepository
from pixelmill.backends.metadata.changes import JobChanges, make_job_changes
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import EventLog
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.jobs import JobRepository, JobStore
from pixelmill.backends.metadata.keys import KeyRepository
from pixelmill.backends.metadata.messages import MessageRepository
from pixelmill.backends.metadata.model_permissions import ModelPermissionRepository
from pixelmill.backends.metadata.models import DatasetRepository, ModelRepository
from pixelmill.backends.metadata.patients import PatientRepository
from pixelmill.backends.metadata.studies import StudyRepository
from pixelmill.backends.metadata.study_images import StudyImageRepository
from pixelmill.backends.metadata.users import UserRepository
from pixelmill.backends.storage.base import Storage
from pixelmill.errors import InvalidInput
from pixelmill.ml.faces import FaceDetector
from pixelmill.ml.onnx_bounds import Bounds
from pixelmill.observability import metrics, tracing
from pixelmill.observability.libvips_log import forward_libvips_messages
from pixelmill.queues import QUEUES
from pixelmill.runtime.healing import guard_broker, guard_cache, guard_storage, healing
from pixelmill.runtime.wiring import (
    dataset_limits,
    job_kinds,
    quotas,
    remote_images,
    site_admin,
    slide_copies_dir,
    study_import_deps,
    study_work,
    workspace,
)
from pixelmill.services.anomaly import AnomalyMonitor
from pixelmill.services.deepzoom import DeepZoomTiles
from pixelmill.services.evaluation import EvaluationService
from pixelmill.services.images import ImageService
from pixelmill.services.inference.service import InferenceService, Predictor
from pixelmill.services.jobs.daemon import JobDaemon
from pixelmill.services.jobs.deps import JobDeps
from pixelmill.services.jobs.service import JobService
from pixelmill.services.model_registry import ModelRegistry
from pixelmill.services.sources import RemoteImages
from pixelmill.services.trainer.service import TrainerService
from pixelmill.services.workspace.access import Access
from pixelmill.services.workspace.accounts import Accounts
from pixelmill.services.workspace.analyses import Analyses
from pixelmill.services.workspace.annotations import AnnotationDesk
from pixelmill.services.workspace.archive import StudyArchives
from pixelmill.services.workspace.exports import Exports
from pixelmill.services.workspace.imports import StudyImports
from pixelmill.services.workspace.pseudonyms import ExternalIds
from pixelmill.services.workspace.quotas import Quotas
from pixelmill.services.workspace.run_rights import RunRights
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


def make_cache(settings: Settings, *, raise_errors: bool = False) -> Cache:
    """The cache ``cache.url`` names; ``raise_errors``: Redis failures raise (for a
    circuit breaker in front, see :func:`pixelmill.runtime.healing.guard_cache`)."""
    url = settings.cache.url
    if url.startswith("memory://"):
        from pixelmill.backends.cache.memory import MemoryCache

        return MemoryCache(settings.cache.max_bytes, settings.cache.ttl_seconds)
    if url.startswith("none://"):
        from pixelmill.backends.cache.memory import NullCache

        return NullCache()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from pixelmill.backends.cache.redis import RedisCache

        return RedisCache(url, default_ttl=settings.cache.ttl_seconds, raise_errors=raise_errors)
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
            b.url,
            namespace=b.namespace,
            policy=policy,
            confirm=b.confirm_publish,
            unavailable_wait_s=b.unavailable_wait_s,
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
    evaluation: EvaluationService
    users: UserRepository
    events: EventLog
    accounts: Accounts
    studies: StudyRepository
    study_images: StudyImageRepository
    access: Access
    messages: MessageRepository
    # patients, study imports, analyses, exports (issue 12 items 5-7, 11)
    patients: PatientRepository
    external_ids: ExternalIds
    analyses: Analyses
    imports: StudyImports
    exports: Exports
    archives: StudyArchives
    annotations: AnnotationRepository
    annotation_desk: AnnotationDesk
    # self-healing (issue 14): circuit breakers, the anomaly monitor
    breakers: Breakers
    # per-user quotas (issue 18, finding 6)
    quotas: Quotas
    anomaly: AnomalyMonitor | None = None
    # remote sources by URL (issue 19), when sources.enabled
    sources: RemoteImages | None = None
    #: the viewer's deep-zoom tiles, over the image service (made below)
    tiles: DeepZoomTiles = field(init=False)

    def __post_init__(self) -> None:
        copies = slide_copies_dir(self.settings)  # originals on object storage
        self.tiles = DeepZoomTiles(self.image_service, spool_dir=copies)

    @property
    def runs_jobs_in_process(self) -> bool:
        """True with the in-process broker: this process runs the jobs it accepts."""
        return not self.broker.durable

    def readiness_checks(self) -> dict[str, Callable[[], None]]:
        return {
            "database": self.db.ping,
            "storage": self.storage.ping,
            "cache": self.cache.ping,
            "broker": self.broker.ping,
        }

    def startup(self) -> None:
        """An embedded gateway recovers unfinished tasks, runs jobs and sweeps expired
        ones in its own process; a distributed one leaves all that to workers."""
        if self.runs_jobs_in_process:
            self.job_daemon.start_embedded()
            self.job_daemon.start_retention()
        if self.anomaly is not None:
            self.anomaly.start()

    def shutdown(self) -> None:
        # every answered prediction's drift statistics count before the process exits
        self.inference.bookkeeper.close()
        if self.anomaly is not None:
            self.anomaly.stop()
        if self.runs_jobs_in_process:
            self.job_daemon.stop()

    def close(self) -> None:
        if self.sources is not None:
            self.sources.fetcher.close()
        self.job_daemon.close()
        self.jobs.close()
        self.inference.close()
        self.broker.close()
        self.changes.close()
        self.job_store.dispose()
        self.cache.close()
        self.db.dispose()


def model_registry(db: Database, storage: Storage) -> ModelRegistry:
    return ModelRegistry(
        storage=storage,
        models=ModelRepository(db),
        permissions=ModelPermissionRepository(db),
        events=EventLog(db),
    )


def trainer_service(
    db: Database,
    storage: Storage,
    models: ModelRegistry,
    settings: Settings,
    user_quotas: Quotas | None = None,
) -> TrainerService:
    return TrainerService(
        quotas=user_quotas,
        storage=storage,
        datasets=DatasetRepository(db),
        registry=models,
        settings=settings.ml,
        limits=dataset_limits(settings),
        is_admin=partial(site_admin, UserRepository(db)),
    )


def make_image_service(
    settings: Settings,
    storage: Storage,
    images: ImageRepository,
    cache: Cache,
    resolve_model: Callable[[str], Predictor],
    user_quotas: Quotas,
) -> ImageService:
    # the detector loads its three small networks on the first face asked for
    faces = FaceDetector(threads=settings.ml.inference_threads)
    return ImageService(
        storage=storage,
        images=images,
        cache=cache,
        render=settings.render,
        cache_ttl=settings.cache.ttl_seconds,
        resolve_model=resolve_model,
        quotas=user_quotas,
        detect_faces=faces.boxes,
    )


def _prepare_process(settings: Settings) -> None:
    """The data dir, tracing (before any engine: DB calls get spans) and libvips (its
    messages forwarded at the levels logging, configured before, shows of them)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tracing.configure_tracing(settings.observability.tracing)
    forward_libvips_messages(logging.getLogger("pyvips").getEffectiveLevel())
    if settings.render.concurrency:
        import pyvips

        pyvips.concurrency_set(settings.render.concurrency)


def build_container(settings: Settings, *, migrate: bool = True) -> Container:
    _prepare_process(settings)
    db = Database(
        settings.database_url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    if migrate:
        db.upgrade()
    breakers = Breakers(settings.healing.breakers)
    storage = guard_storage(settings, make_storage(settings), breakers)
    cache = guard_cache(make_cache(settings, raise_errors=breakers.policy.enabled), breakers)
    images = ImageRepository(db)
    user_quotas = quotas(db, settings)
    models = model_registry(db, storage)
    models.bounds = Bounds.of(settings.ml)  # ml.max_tensor_bytes, ml.arena_max_bytes, ...
    inference: InferenceService | None = None

    def resolve_model(ref: str) -> Predictor:
        # the image service and inference use each other: bound once both exist, below
        assert inference is not None
        return inference.resolver(ref)

    image_service = make_image_service(settings, storage, images, cache, resolve_model, user_quotas)
    inference = InferenceService(registry=models, images=image_service, settings=settings.ml)
    trainer = trainer_service(db, storage, models, settings, user_quotas)
    evaluation = EvaluationService(trainer=trainer, evaluations=models.evaluations)
    import_deps = study_import_deps(db, image_service, storage, settings)
    kinds = job_kinds(settings, db, image_service, models, trainer, evaluation, import_deps)
    broker = guard_broker(make_broker(settings), breakers)
    changes = make_job_changes(settings.database_url, notify=settings.jobs.events_notify)
    job_store = JobRepository(db)
    queue_metrics(broker, job_store)
    parts = workspace(db, images, image_service, settings)
    job_deps = JobDeps(
        settings=settings.jobs,
        store=job_store,
        broker=broker,
        kinds=kinds,
        storage=storage,
        images=image_service,
        changes=changes,
        data_dir=settings.data_dir,
        admit=user_quotas.admit_job,
        may_run=RunRights(
            users=parts["users"], access=parts["access"], ttl=settings.security.key_cache_s
        ).check,
    )
    jobs = JobService(job_deps)
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
        jobs=jobs,
        job_daemon=JobDaemon(job_deps),
        models=models,
        inference=inference,
        trainer=trainer,
        evaluation=evaluation,
        breakers=breakers,
        quotas=user_quotas,
        anomaly=healing(settings, inference, parts["events"], breakers),
        sources=remote_images(settings),
        **study_work(db, jobs, import_deps, settings),
        **parts,
    )


def queue_metrics(broker: Broker, store: JobRepository) -> None:
    """Serve the queues' USE metrics on this process's /metrics (read when scraped)."""
    collector = metrics.QueueCollector(broker.queue_stats, store.queue_stats, QUEUES)
    metrics.add_scrape_collector("queues", collector)
