"""Study archives: a zip that carries a study to another pixelmill, and annotation zips.

An archive holds ``manifest.json`` (format ``pixelmill-study`` version 1: the study's
name, description, modality and options; its patients by code with their attributes;
its images with their study attributes, patient code and the sha256 of their bytes),
``objects/{sha256}`` (each image's bytes, once) and ``annotations/{n}.geojson`` (each
image's annotations, QuPath GeoJSON). Members, analyses, jobs and external ids stay
behind: they are the site's (the HMACs are keyed with its secret).

Importing one creates a new study owned by the importer, with the same patient codes,
the images as the importer's (checked against their sha256, probed like uploads) and
the annotations (measured again). Either all of it lands or, on any error, the new
study is deleted again.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pixelmill.errors import InvalidDataset, InvalidParameter

if TYPE_CHECKING:
    from pixelmill.backends.metadata.annotations import AnnotationRepository
    from pixelmill.backends.metadata.events import Actor
    from pixelmill.backends.metadata.patients import PatientRepository
    from pixelmill.backends.metadata.studies import StudyRecord, StudyRepository
    from pixelmill.backends.metadata.study_images import StudyImageRepository
    from pixelmill.ml.dataset_limits import DatasetLimits
    from pixelmill.services.images import ImageService

FORMAT = "pixelmill-study"
VERSION = 1
_PAGE = 500
_SHA = r"^[0-9a-f]{64}$"


class ArchivePatient(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(..., pattern=r"^S-\d{4,9}$")
    sex: str | None = Field(None, pattern=r"^(female|male|other|unknown)$")
    age_band: str | None = Field(None, pattern=r"^(\d0-\d9|90\+)$")
    diagnosis: str | None = Field(None, max_length=200)
    arm: str | None = Field(None, max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=20)


class ArchiveImage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str = Field(..., pattern=_SHA)
    filename: str | None = Field(None, max_length=512)
    display_name: str = Field("", max_length=200)
    stain: str | None = Field(None, max_length=64)
    magnification: float | None = Field(None, gt=0, le=1000, allow_inf_nan=False)
    pixel_size_um: float | None = Field(None, gt=0, le=1000, allow_inf_nan=False)
    patient_code: str | None = Field(None, max_length=16)
    annotations: str | None = Field(None, pattern=r"^annotations/\d+\.geojson$")


class ArchiveStudy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=20_000)
    modality: str = Field("histology", pattern=r"^(histology|cytology|ihc|fluorescence|other)$")
    options: dict[str, Any] = Field(default_factory=dict)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str = Field(..., pattern=f"^{FORMAT}$")
    version: int = Field(..., ge=1, le=VERSION)
    study: ArchiveStudy
    patients: list[ArchivePatient] = Field(default_factory=list, max_length=100_000)
    images: list[ArchiveImage] = Field(default_factory=list, max_length=100_000)


@dataclass(frozen=True)
class ArchiveDeps:
    studies: StudyRepository
    study_images: StudyImageRepository
    patients: PatientRepository
    annotations: AnnotationRepository
    images: ImageService
    limits: DatasetLimits
    tmp_dir: Path


class StudyArchives:
    def __init__(self, deps: ArchiveDeps) -> None:
        self.deps = deps

    # -- export -----------------------------------------------------------------------------
    def write_annotations(self, study_id: str, out: IO[bytes]) -> int:
        """A zip of one QuPath GeoJSON file per image of the study; the file count."""
        names: set[str] = set()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for link, image in self._images(study_id):
                stem = _safe(link.display_name or image.get("filename") or link.image_id)
                name = f"{stem}.geojson" if stem not in names else f"{stem}-{link.image_id}.geojson"
                names.add(stem)
                zf.writestr(name, self._geojson(study_id, link.image_id))
        return len(names)

    def write_archive(self, study_id: str, out: IO[bytes]) -> None:
        """The study as an archive (see the module docstring), written to ``out``."""
        d = self.deps
        study = d.studies.get(study_id)
        patients: dict[str, str] = {}
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "study": {k: getattr(study, k) for k in ("name", "description", "modality", "options")},
            "patients": [],
            "images": [],
        }
        offset = 0
        while True:
            page, total = d.patients.page(study_id, limit=_PAGE, offset=offset)
            for p in page:
                patients[p.id] = p.code
                manifest["patients"].append(
                    {"code": p.code, "sex": p.sex, "age_band": p.age_band,
                     "diagnosis": p.diagnosis, "arm": p.arm, "tags": p.tags}
                )  # fmt: skip
            offset += len(page)
            if not page or offset >= total:
                break
        stored: set[str] = set()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for n, (link, image) in enumerate(self._images(study_id)):
                sha = str(image["sha256"])
                if sha not in stored:
                    stored.add(sha)
                    info = zipfile.ZipInfo(f"objects/{sha}")
                    info.compress_type = zipfile.ZIP_STORED  # images are compressed already
                    key = f"originals/{sha[:2]}/{sha}"  # ImageRecord.storage_key
                    with (
                        d.images.storage.open(key) as src,
                        zf.open(info, "w", force_zip64=True) as dst,
                    ):
                        shutil.copyfileobj(src, dst, 1 << 20)
                annotations = f"annotations/{n}.geojson"
                zf.writestr(annotations, self._geojson(study_id, link.image_id))
                manifest["images"].append(
                    {"sha256": sha, "filename": image.get("filename"),
                     "display_name": link.display_name, "stain": link.stain,
                     "magnification": link.magnification, "pixel_size_um": link.pixel_size_um,
                     "patient_code": patients.get(link.patient_id or ""),
                     "annotations": annotations}
                )  # fmt: skip
            zf.writestr("manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))

    def _images(self, study_id: str) -> Iterator[tuple[Any, dict[str, Any]]]:
        offset = 0
        while True:
            rows, total = self.deps.study_images.images(study_id, limit=_PAGE, offset=offset)
            yield from rows
            offset += len(rows)
            if not rows or offset >= total:
                return

    def _geojson(self, study_id: str, image_id: str) -> bytes:
        features = [r.feature() for r in self.deps.annotations.iterate(study_id, image_id)]
        return orjson.dumps({"type": "FeatureCollection", "features": features})

    # -- import -----------------------------------------------------------------------------
    def import_archive(self, actor: Actor, source: BinaryIO) -> StudyRecord:
        """A new study from the archive in ``source`` (a seekable binary file)."""
        from pixelmill.ml import dataset_limits as dl

        archive, infos = dl.open_archive(source, self.deps.limits)
        with archive:
            unsafe = dl.unsafe_names(archive.infolist())
            if unsafe:
                raise InvalidDataset(
                    f"{len(unsafe)} member path(s) leave the archive (zip slip)",
                    files=[{"file": n, "problem": "unsafe path"} for n in unsafe[:50]],
                )
            members = {i.filename: i for i in infos}
            manifest = _manifest(archive, members, self.deps.limits)
            study = self.deps.studies.create(actor, **manifest.study.model_dump())
            try:
                self._fill(actor, study.id, manifest, archive, members)
            except BaseException:
                self.deps.studies.delete(actor, study.id)
                raise
        return self.deps.studies.get(study.id)

    def _fill(
        self,
        actor: Actor,
        study_id: str,
        manifest: Manifest,
        archive: zipfile.ZipFile,
        members: dict[str, zipfile.ZipInfo],
    ) -> None:
        from pixelmill.imaging.annotations import parse_geojson

        d = self.deps
        codes: dict[str, str] = {}  # code -> the new patient's id
        for p in sorted(manifest.patients, key=lambda p: (len(p.code), p.code)):
            codes[p.code] = d.patients.create(actor, study_id, **p.model_dump()).id
        for n, item in enumerate(manifest.images):
            record = self._ingest(actor, archive, members, item, n)
            attrs = item.model_dump(
                include={"display_name", "stain", "magnification", "pixel_size_um"},
                exclude_none=True,
            )
            if item.patient_code:
                if item.patient_code not in codes:
                    raise InvalidParameter(f"image {n}: no patient {item.patient_code!r}")
                attrs["patient_id"] = codes[item.patient_code]
            d.study_images.add_image(actor, study_id, record.id, **attrs)
            if item.annotations:
                info = members.get(item.annotations)
                if info is None:
                    raise InvalidParameter(f"image {n}: {item.annotations} is missing")
                from pixelmill.ml.dataset_limits import read_member

                found = parse_geojson(
                    read_member(archive, info, d.limits),
                    image_size=(record.width, record.height),
                )
                if found:
                    d.annotations.create_many(
                        actor, study_id, record.id, found,
                        pixel_size_um=item.pixel_size_um or record.pixel_size_um,
                        source="import",
                    )  # fmt: skip

    def _ingest(
        self,
        actor: Actor,
        archive: zipfile.ZipFile,
        members: dict[str, zipfile.ZipInfo],
        item: ArchiveImage,
        n: int,
    ) -> Any:
        from pixelmill.ml.dataset_limits import copy_member

        info = members.get(f"objects/{item.sha256}")
        if info is None:
            raise InvalidParameter(f"image {n}: objects/{item.sha256} is missing")
        self.deps.tmp_dir.mkdir(parents=True, exist_ok=True)
        path = self.deps.tmp_dir / f"archive-{item.sha256}-{id(self)}"
        try:
            with path.open("wb") as out:
                copy_member(archive, info, self.deps.limits, out)
            digest = _sha256(path)
            if digest != item.sha256:
                raise InvalidParameter(f"image {n}: its bytes do not match their sha256")
            record, _ = self.deps.images.ingest_file(
                path, filename=item.filename, sha256=digest, source="import",
                owner_id=actor.user_id or "",
            )  # fmt: skip
            return record
        finally:
            path.unlink(missing_ok=True)


def _manifest(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], limits: DatasetLimits
) -> Manifest:
    from pixelmill.ml.dataset_limits import read_member

    info = members.get("manifest.json")
    if info is None:
        raise InvalidDataset("not a study archive: it has no manifest.json", files=[])
    try:
        return Manifest.model_validate_json(read_member(archive, info, limits))
    except ValidationError as exc:
        raise InvalidParameter(
            "the archive's manifest.json is not valid",
            errors=[{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in exc.errors()][
                :50
            ],
        ) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _safe(name: str) -> str:
    """A file name from a display name: no folders, no control characters."""
    cleaned = "".join(c if c.isalnum() or c in " ._-()" else "_" for c in name).strip(" .")
    return cleaned[:120] or "image"
