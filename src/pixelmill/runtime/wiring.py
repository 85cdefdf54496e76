"""The composition root's wiring of the research workspace: users and accounts, studies,
access, annotations, patients, and the work on a study's images (imports, analyses,
exports, archives); and of remote sources. Called by :func:`pixelmill.runtime.container.build_container` only."""

from __future__ import annotations

import os
import secrets
import time
from functools import partial
from pathlib import Path
from typing import Any

from pixelmill.backends.metadata.analyses import AnalysisRepository
from pixelmill.backends.metadata.annotations import AnnotationRepository
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import EventLog
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.messages import MessageRepository
from pixelmill.backends.metadata.patients import PatientRepository
from pixelmill.backends.metadata.quotas import QuotaRepository
from pixelmill.backends.metadata.studies import StudyRepository
from pixelmill.backends.metadata.study_images import StudyImageRepository
from pixelmill.backends.metadata.users import UserRepository
from pixelmill.backends.sources.fetch import S3Access, SourceFetcher
from pixelmill.backends.storage.base import Storage
from pixelmill.errors import InvalidInput, NotFound
from pixelmill.ml.dataset_limits import DatasetLimits
from pixelmill.services.evaluation import EvaluationService, evaluate_kind
from pixelmill.services.images import ImageService
from pixelmill.services.jobs import JobKind
from pixelmill.services.jobs.faces_kind import faces_kind
from pixelmill.services.jobs.kinds import JobKinds
from pixelmill.services.jobs.pipeline_kind import pipeline_kind
from pixelmill.services.jobs.service import JobService
from pixelmill.services.jobs.track_kind import track_kind
from pixelmill.services.model_registry import Caller, ModelRegistry
from pixelmill.services.slide_copies import SlideCopies
from pixelmill.services.sources import RemoteImages
from pixelmill.services.trainer.kind import train_kind
from pixelmill.services.trainer.service import TrainerService
from pixelmill.services.training_loop import TrainingLoop, loop_kind
from pixelmill.services.workspace.access import Access
from pixelmill.services.workspace.accounts import Accounts
from pixelmill.services.workspace.analyses import Analyses
from pixelmill.services.workspace.annotations import AnnotationDesk
from pixelmill.services.workspace.archive import ArchiveDeps, StudyArchives
from pixelmill.services.workspace.exports import Exports
from pixelmill.services.workspace.imports import ImportDeps, StudyImports, study_import_kind
from pixelmill.services.workspace.pseudonyms import ExternalIds
from pixelmill.services.workspace.quotas import Quotas
from pixelmill.settings import Settings


def remote_images(settings: Settings) -> RemoteImages | None:
    """Remote sources by URL when ``sources.enabled`` (read from S3 with the storage
    section's endpoint and credentials)."""
    conf = settings.sources
    if not conf.enabled:
        return None
    storage = settings.storage
    s3 = S3Access(
        endpoint_url=storage.s3_endpoint_url,
        region=storage.s3_region,
        access_key=storage.s3_access_key,
        secret_key=storage.s3_secret_key,
    )
    return RemoteImages(
        SourceFetcher(conf, s3=s3),
        max_pixels=settings.render.max_pixels,
        cache_bytes=conf.cache_bytes,
        cache_ttl_s=conf.cache_ttl_s,
    )


def quotas(db: Database, settings: Settings) -> Quotas:
    """Users' quotas: site defaults, overrides in the DB, denials to the event log."""
    return Quotas(
        repo=QuotaRepository(db),
        users=UserRepository(db),
        events=EventLog(db),
        settings=settings.quota,
    )


def dataset_limits(settings: Settings) -> DatasetLimits:
    """A dataset archive gets the limits of ``POST /v1/images`` per image (bytes and
    pixels) and ``ml.max_dataset_bytes`` for all its members uncompressed."""
    return DatasetLimits(
        max_member_bytes=settings.server.max_upload_bytes,
        max_total_bytes=settings.ml.max_dataset_bytes,
        max_image_pixels=settings.render.max_pixels,
    )


def study_import_deps(
    db: Database, images: ImageService, storage: Storage, settings: Settings
) -> ImportDeps:
    """What the ``study_import`` job kind works with (a zip's limits: a dataset's)."""
    return ImportDeps(
        images=images,
        storage=storage,
        studies=StudyRepository(db),
        study_images=StudyImageRepository(db),
        users=UserRepository(db),
        limits=dataset_limits(settings),
        tmp_dir=settings.data_dir / "tmp",
    )


def ml_kinds(db: Database, evaluation: EvaluationService) -> list[JobKind]:
    """The job kinds of model evaluation and of the train-evaluate-promote loop."""
    return [evaluate_kind(evaluation), loop_kind(TrainingLoop(evaluation, EventLog(db)))]


def study_work(
    db: Database, jobs: JobService, import_deps: ImportDeps, settings: Settings
) -> dict[str, Any]:
    """Work on a study's images: bulk imports, analyses, exports, archives."""
    analyses = Analyses(AnalysisRepository(db), jobs)
    # an analysis is brought up to date when its job ends, by the process recording that
    # (a worker, or an embedded gateway), whether or not anyone reads it; the jobs that
    # ended meanwhile are looked up together, off the tasks' path
    jobs.deps.finished.subscribe_batch(analyses.jobs_finished)
    archive = ArchiveDeps(
        studies=import_deps.studies,
        study_images=import_deps.study_images,
        patients=PatientRepository(db),
        annotations=AnnotationRepository(db),
        images=import_deps.images,
        limits=import_deps.limits,
        tmp_dir=import_deps.tmp_dir,
    )
    return {
        "analyses": analyses,
        "exports": Exports(db, analyses),
        "archives": StudyArchives(archive),
        "imports": StudyImports(
            import_deps, jobs, max_upload_bytes=settings.server.max_upload_bytes
        ),
    }


def workspace(
    db: Database, images: ImageRepository, image_service: ImageService, settings: Settings
) -> dict[str, Any]:
    """The research workspace's parts: users and accounts, studies, access, events."""
    users = UserRepository(db)
    events = EventLog(db)
    studies = StudyRepository(db)
    study_images = StudyImageRepository(db)
    access = Access(
        studies=studies, study_images=study_images, record=image_service.record, events=events
    )
    annotations = AnnotationRepository(db)
    return {
        "users": users,
        "events": events,
        "accounts": Accounts(users, events, settings.workspace),
        "studies": studies,
        "study_images": study_images,
        "messages": MessageRepository(db),
        "access": access,
        "annotations": annotations,
        "annotation_desk": AnnotationDesk(
            access=access, annotations=annotations, study_images=study_images, images=images
        ),
        "patients": PatientRepository(db),
        "external_ids": ExternalIds(site_secret(settings)),
    }


def site_secret(settings: Settings) -> bytes:
    """The key of the HMACs that stand for patients' external ids: the setting, else a
    random secret made once in ``DATA_DIR/site-secret`` (mode 0600) and kept there."""
    if settings.workspace.site_secret:
        return settings.workspace.site_secret.encode()
    path = settings.data_dir / "site-secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:  # the first start: another process racing us reads ours (O_EXCL)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    for _ in range(50):
        secret = path.read_text().strip()
        if secret:
            return secret.encode()
        time.sleep(0.01)  # written by a process that won the race an instant ago
    raise InvalidInput(f"{path} is empty: delete it or set workspace.site_secret")


def slide_copies_dir(settings: Settings) -> Path:
    """Where originals on object storage are copied for tile and region reads."""
    return settings.data_dir / "slide-copies"


def job_kinds(
    settings: Settings,
    db: Database,
    image_service: ImageService,
    models: ModelRegistry,
    trainer: TrainerService,
    evaluation: EvaluationService,
    import_deps: ImportDeps,
) -> JobKinds:
    """The built-in job kinds, with the services they need, and the configured plugins."""
    return JobKinds(
        [
            pipeline_kind(
                image_service,
                default_quality=settings.render.default_quality,
                model_check=partial(model_use, models, UserRepository(db)),
                # the viewer's tiles use the same copies (runtime/container.py)
                slide_copies=SlideCopies(image_service.storage, slide_copies_dir(settings)),
            ),
            train_kind(trainer),
            *ml_kinds(db, evaluation),
            faces_kind(image_service),
            track_kind(image_service, model_check=partial(model_use, models, UserRepository(db))),
            study_import_kind(import_deps),
        ],
        plugins=settings.jobs.plugins,
    )


def site_admin(users: UserRepository, user_id: str) -> bool:
    """Whether ``user_id`` is a site admin's (unknown ids are not)."""
    try:
        return users.get(user_id).is_admin
    except NotFound:
        return False


def model_use(models: ModelRegistry, users: UserRepository, owner: str | None, ref: str) -> None:
    """404 unless the job's owner may use the model ``ref`` (site admins may use any)."""
    if owner and not site_admin(users, owner):
        models.check_use(Caller(owner, False), ref)
