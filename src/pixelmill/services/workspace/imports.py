"""Bulk import into a study: the ``study_import`` job kind.

The gateway spools the uploaded files (or zips) to object storage under
``imports/{upload}/`` and submits one job owned by the importer; its progress is the
job's (``GET /v1/jobs/{id}`` and its SSE stream). The job, for each file (each member
of a zip):

* copies it to a temp file (streamed, capped: nothing is held in memory whole),
* sniffs the format from the bytes and checks the pixel limit from the header,
* de-identifies TIFF-based slides (SVS, OME-TIFF, TIFF) with the study's
  ``options.deidentify_fields``: the label and macro images are dropped and names and
  dates scrubbed; the original bytes are kept (as a separate, unlinked image of the
  importer's) only when the study sets ``options.keep_originals``,
* stores the image as the importer's and links it to the study with a display name
  from the file name and the pixel size from the original's header.

A file that is not an image (or too large) is listed under ``failed``; the others are
imported. When the importer's storage quota is used up, the file that did not fit is
listed under ``failed`` and the import stops there (``quota_exceeded`` says why); the
images stored before it stay. A re-run (at-least-once delivery) finds the images it
stored already.
"""

from __future__ import annotations

import contextlib
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from pixelmill.backends.metadata.events import Actor
from pixelmill.errors import (
    ImageTooLarge,
    InvalidDataset,
    InvalidInput,
    InvalidParameter,
    NotFound,
    QuotaExceeded,
)
from pixelmill.services.jobs.kinds import JobKind
from pixelmill.services.workspace.permissions import can

if TYPE_CHECKING:
    from pixelmill.backends.metadata.jobs.base import JobRecord
    from pixelmill.backends.metadata.studies import StudyRecord, StudyRepository
    from pixelmill.backends.metadata.study_images import StudyImageRepository
    from pixelmill.backends.metadata.users import UserRepository
    from pixelmill.backends.storage.base import Storage
    from pixelmill.ml.dataset_limits import DatasetLimits
    from pixelmill.services.images import ImageService
    from pixelmill.services.jobs.context import Job, JobContext
    from pixelmill.services.jobs.service import JobService

_CHUNK = 1 << 20


class ImportFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(..., max_length=200, pattern=r"^imports/[0-9a-f]{32}/\d{5}$")
    name: str = Field(..., max_length=512)
    archive: bool = False
    #: bytes as uploaded (a zip's compressed size), for the storage quota's early check
    size: int = Field(0, ge=0)


class ImportParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    study_id: str = Field(..., max_length=32)
    files: list[ImportFile] = Field(..., min_length=1, max_length=20_000)


def display_name(name: str) -> str:
    """A study image's display name from a file name: its last part, no extension."""
    base = PurePosixPath(name.replace("\\", "/")).name
    return (PurePosixPath(base).stem or base)[:200]


@dataclass(frozen=True)
class ImportDeps:
    images: ImageService
    storage: Storage
    studies: StudyRepository
    study_images: StudyImageRepository
    users: UserRepository
    limits: DatasetLimits
    tmp_dir: Path


def study_import_kind(deps: ImportDeps) -> JobKind:
    """The ``study_import`` kind over the services in ``deps``."""

    def run(job: Job, ctx: JobContext) -> dict[str, Any]:
        return _run(deps, job, ctx)

    return JobKind(
        name="study_import",
        summary="Import uploaded images and zips into a study (de-identifying slides).",
        params=ImportParams,
        queue="transform",
        run=run,
        time_limit_s=6 * 3600,
        max_retries=2,
    )


def _run(deps: ImportDeps, job: Job, ctx: JobContext) -> dict[str, Any]:
    params = ImportParams.model_validate(job.params)
    try:
        return _import(deps, job, ctx, params)
    except (InvalidInput, NotFound):
        # a failure no retry fixes: the spooled uploads will never be read again
        for item in params.files:
            deps.storage.delete(item.key)
        raise


def _import(deps: ImportDeps, job: Job, ctx: JobContext, params: ImportParams) -> dict[str, Any]:
    study = _check_importer(deps, params.study_id, job.owner or "")
    total = _count(deps, params)
    imported: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    over_quota: str | None = None
    for done, (name, write) in enumerate(_entries(deps, params), start=1):
        ctx.raise_if_cancelled()
        with ctx.step(f"import {name}"), _temp(deps.tmp_dir) as path:
            try:
                with path.open("wb") as out:
                    write(out)
                imported.append(_import_one(deps, job, study, name, path))
            except (InvalidInput, NotFound, QuotaExceeded) as exc:
                failed.append({"file": name, "problem": exc.detail})
                over_quota = exc.detail if isinstance(exc, QuotaExceeded) else None
        ctx.progress(done / total, f"{done}/{total}: {name}", force=True)
        if over_quota:
            break
    for item in params.files:
        deps.storage.delete(item.key)
    return {
        "study_id": study.id,
        "imported": len(imported),
        "failed": failed,
        "images": imported,
        "quota_exceeded": over_quota,
    }


def _check_importer(deps: ImportDeps, study_id: str, owner: str) -> StudyRecord:
    """The study, when the importer may still add images to it (it may have been
    locked, or they removed, since the upload)."""
    study, role = deps.studies.role_of(study_id, owner)
    if role is not None and can(role, "image.add", study.status, False):  # type: ignore[arg-type]
        return study
    if role is None and owner and deps.users.get(owner).is_admin:
        return study
    raise InvalidParameter(f"the importer may not add images to study {study_id!r} (any more)")


Writer = Callable[[Any], None]


def _count(deps: ImportDeps, params: ImportParams) -> int:
    """How many files the import holds (zips' members counted from their directory)."""
    total = 0
    for item in params.files:
        if not item.archive:
            total += 1
            continue
        with _archive(deps, item) as (_zip, infos):
            total += len(infos)
    return max(total, 1)


@contextlib.contextmanager
def _archive(
    deps: ImportDeps, item: ImportFile
) -> Iterator[tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]]:
    from pixelmill.ml import dataset_limits as dl

    with _local(deps, item.key) as zip_path, zip_path.open("rb") as fh:
        archive, infos = dl.open_archive(fh, deps.limits)
        if dl.unsafe_names(archive.infolist()):
            raise InvalidParameter(f"{item.name}: member paths leave the archive (zip slip)")
        with archive:
            yield archive, infos


def _entries(deps: ImportDeps, params: ImportParams) -> Iterator[tuple[str, Writer]]:
    """``(file name, write its bytes into a file)`` for each file and zip member."""
    for item in params.files:
        if not item.archive:
            yield item.name, _copier(deps.storage, item.key)
            continue
        with _archive(deps, item) as (archive, infos):
            for info in infos:
                yield info.filename, _member(archive, info, deps.limits)


def _copier(storage: Storage, key: str) -> Writer:
    def write(out: Any) -> None:
        with storage.open(key) as src:
            while chunk := src.read(_CHUNK):
                out.write(chunk)

    return write


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: DatasetLimits) -> Writer:
    from pixelmill.ml.dataset_limits import copy_member

    def write(out: Any) -> None:
        copy_member(archive, info, limits, out)

    return write


@contextlib.contextmanager
def _local(deps: ImportDeps, key: str) -> Iterator[Path]:
    """A local path of a stored object: the storage's own file, else a temp copy."""
    path = deps.storage.local_path(key)
    if path is not None:
        yield path
        return
    with _temp(deps.tmp_dir) as tmp:
        with tmp.open("wb") as out:
            _copier(deps.storage, key)(out)
        yield tmp


@contextlib.contextmanager
def _temp(root: Path) -> Iterator[Path]:
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix="import-") as folder:
        yield Path(folder) / "file"


def _import_one(
    deps: ImportDeps, job: Job, study: StudyRecord, name: str, path: Path
) -> dict[str, Any]:
    from pixelmill.imaging.formats import ImageFormat
    from pixelmill.imaging.probe import probe
    from pixelmill.ml.dataset_limits import check_image

    _pixels, problem = check_image(name, path, deps.limits)
    if problem:
        raise InvalidParameter(problem)
    info = probe(path, max_pixels=deps.limits.max_image_pixels, verify=False)
    owner = job.owner or ""
    filename = PurePosixPath(name.replace("\\", "/")).name
    outcome: dict[str, Any] = {"file": name, "deidentified": None, "original_image_id": None}
    target = path
    if info.format is ImageFormat.TIFF:
        target = path.with_name("deidentified.tif")
        outcome["deidentified"] = _deidentify(path, target, study.options)
        if outcome["deidentified"] is None:  # nothing to scrub: the file as it came
            target = path
        elif study.options.get("keep_originals"):
            original, _ = deps.images.ingest_file(
                path, filename=filename, source="original", job_id=job.id, owner_id=owner
            )
            outcome["original_image_id"] = original.id
    record, _ = deps.images.ingest_file(
        target, filename=filename, source="import", job_id=job.id, owner_id=owner
    )
    pixel_size = info.pixel_size_um or record.pixel_size_um
    attrs: dict[str, Any] = {"display_name": display_name(name)}
    if pixel_size:
        attrs["pixel_size_um"] = pixel_size
    linked = deps.study_images.add_image(Actor(owner or None), study.id, record.id, **attrs)
    outcome.update(
        image_id=record.id,
        display_name=attrs["display_name"],
        pixel_size_um=pixel_size,
        linked=linked,
    )
    return outcome


def _deidentify(source: Path, target: Path, options: dict[str, Any]) -> dict[str, Any] | None:
    """Write the de-identified slide at ``target``; ``None`` when there was nothing to
    drop or scrub. A pyramidal slide is re-encoded as JPEG (as scanners store them),
    a single image losslessly."""
    from pixelmill.imaging.slides import deidentify as deid

    fields = options.get("deidentify_fields")
    metadata = deid.read_slide_metadata(source)
    plan = deid.plan_deidentification(
        metadata, fields=deid.DEFAULT_FIELDS if fields is None else tuple(fields)
    )
    if not plan.drop_pages and not plan.removed_fields:
        return None
    compression = "jpeg" if len(metadata.pages) > 1 else "deflate"
    deid.write_deidentified(source, target, plan, compression=compression)
    return {
        "dropped_images": list(plan.dropped_images),
        "removed_fields": list(plan.removed_fields),
    }


class StudyImports:
    """The gateway's side: spool the uploaded files to storage, check zips up front
    (count, declared sizes, zip slip: a 4xx before any job exists), submit the job."""

    def __init__(self, deps: ImportDeps, jobs: JobService, *, max_upload_bytes: int) -> None:
        self.deps = deps
        self.jobs = jobs
        self.max_upload_bytes = max_upload_bytes

    @property
    def max_total_bytes(self) -> int:
        return self.deps.limits.max_total_bytes

    @property
    def max_files(self) -> int:
        return self.deps.limits.max_files

    def spool(self, upload: str, index: int, path: Path, name: str) -> ImportFile:
        """Check the file at ``path`` (a zip or an image) and move it into storage."""
        from pixelmill.ml import dataset_limits as dl

        with path.open("rb") as fh:
            archive = fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
            if archive:
                zipped, _infos = dl.open_archive(fh, self.deps.limits)
                unsafe = dl.unsafe_names(zipped.infolist())  # hidden ones too
                zipped.close()
                if unsafe:
                    raise InvalidDataset(
                        f"{name}: {len(unsafe)} member path(s) would leave the archive's "
                        "folder (zip slip); nothing was imported",
                        files=[{"file": n, "problem": "unsafe path"} for n in unsafe[:50]],
                    )
        if not archive and path.stat().st_size > self.max_upload_bytes:
            raise ImageTooLarge(
                f"{name} is larger than the limit of {self.max_upload_bytes} bytes",
                max_bytes=self.max_upload_bytes,
            )
        item = ImportFile(
            key=f"imports/{upload}/{index:05d}",
            name=name[-512:],
            archive=archive,
            size=path.stat().st_size,
        )
        self.deps.storage.put_file(item.key, path)
        return item

    def submit(self, owner: str, study_id: str, files: list[ImportFile]) -> JobRecord:
        """Submit the import job; 403 (quota-exceeded) first when the files as uploaded
        do not fit in ``owner``'s storage quota. The spooled files go on any refusal."""
        params = ImportParams(study_id=study_id, files=files)
        try:
            if self.deps.images.quotas is not None:
                self.deps.images.quotas.check_room(owner, sum(f.size for f in files))
            job, _ = self.jobs.submit(
                kind="study_import", params=params.model_dump(mode="json"), owner=owner
            )
        except BaseException:
            self.discard(files)
            raise
        return job

    def discard(self, files: list[ImportFile]) -> None:
        for item in files:
            self.deps.storage.delete(item.key)
