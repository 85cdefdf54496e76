"""Training datasets from a study's annotations, in one call (issue 20, item 5).

The study's polygon annotations (of the chosen classes, on the chosen images: by default
every image with at least one) are rasterised to instance label masks
(:mod:`pixelmill.ml.annotation_masks`), paired with the images' own pixels, and stored
through the dataset store (:meth:`TrainerService.add_dataset`: the same checks, limits
and stored-bytes quota as an upload). The dataset's summary keeps the provenance: the
study, every annotation's id and version, the classes and the split's fraction and seed.
The study's event log gets ``dataset.build``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pixelmill.backends.metadata.annotations import AnnotationRepository
from pixelmill.backends.metadata.events import EventLog
from pixelmill.backends.metadata.models import DatasetRecord
from pixelmill.backends.metadata.study_images import StudyImageRepository
from pixelmill.errors import ImageTooLarge, InvalidParameter, missing_ids
from pixelmill.services.images import ImageService
from pixelmill.services.trainer.service import TrainerService
from pixelmill.services.workspace.access import Access, actor_of
from pixelmill.services.workspace.principal import Principal

#: the most images one build reads (each is decoded whole)
MAX_IMAGES = 500


class DatasetOptions(BaseModel):
    """What goes into a dataset built from a study's annotations."""

    model_config = ConfigDict(extra="forbid", title="Dataset from annotations")

    name: str | None = Field(None, max_length=200, description="Dataset name.")
    classes: list[str] | None = Field(
        None,
        max_length=100,
        description="Annotation classes to include (default: every class, and unclassified).",
    )
    image_ids: list[str] | None = Field(
        None,
        min_length=1,
        max_length=MAX_IMAGES,
        description="Study images to include (default: every image with an annotation).",
    )
    val_fraction: float = Field(
        0.25, ge=0, lt=1, description="Share of images held out (the 'val' split)."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the held-out split.")


@dataclass(frozen=True)
class StudyDatasets:
    access: Access
    annotations: AnnotationRepository
    study_images: StudyImageRepository
    images: ImageService
    trainer: TrainerService
    events: EventLog

    def build(
        self, principal: Principal, study_id: str, options: DatasetOptions
    ) -> tuple[DatasetRecord, bool]:
        """Build and store the dataset (``dataset.build`` in the study; 422 when no
        image has a polygon of the chosen classes)."""
        from pixelmill.ml import datasets
        from pixelmill.ml.annotation_masks import POLYGONAL, label_mask, relabel
        from pixelmill.ml.preprocess import decode

        self.access.study(principal, study_id, "dataset.build")
        wanted = None if options.classes is None else set(options.classes)
        pairs: list[tuple[str, Any, Any]] = []
        used: dict[str, list[str]] = {}
        for image_id in self._image_ids(study_id, options.image_ids):
            records = [
                a
                for a in self.annotations.iterate(study_id, image_id)
                if a.geometry.get("type") in POLYGONAL
                and (wanted is None or a.class_name in wanted)
            ]
            if not records:
                continue
            self._check_size(image_id)
            pixels = decode(self.images.original_bytes(image_id))
            labels = label_mask([a.geometry for a in records], pixels.shape[:2])
            pairs.append((image_id, pixels, relabel(labels)))
            used[image_id] = [f"{a.id}:{a.version}" for a in records]
        if not pairs:
            raise InvalidParameter(
                "no image of the study has a polygon annotation of the chosen classes",
                classes=options.classes,
            )
        data = datasets.build_archive(pairs)
        owner = principal.user_id or "local"
        record, created = self.trainer.add_dataset(
            data,
            name=options.name or f"study {study_id[:8]} annotations",
            task="segmentation",
            val_fraction=options.val_fraction,
            seed=options.seed,
            actor=owner,
            provenance=provenance(study_id, options, used),
        )
        self.events.record(
            actor_of(principal),
            "dataset.build",
            "dataset",
            record.id,
            study_id=study_id,
            after={
                "dataset_id": record.id,
                "images": len(pairs),
                "objects": sum(len(v) for v in used.values()),
                "split": {k: len(v) for k, v in record.split.items()},
            },
        )
        return record, created

    def _check_size(self, image_id: str) -> None:
        """413 before decoding an image larger than a dataset image may be (a slide)."""
        record = self.images.record(image_id)
        limit = self.trainer.limits.max_image_pixels
        if record.width * record.height > limit:
            raise ImageTooLarge(
                f"image {image_id!r} has {record.width}x{record.height} pixels, more than a "
                f"dataset image may ({limit}): leave it out with image_ids",
                image_id=image_id,
            )

    def _image_ids(self, study_id: str, chosen: list[str] | None) -> list[str]:
        if chosen is not None:
            missing = [i for i in chosen if self.study_images.study_image(study_id, i) is None]
            if missing:
                raise missing_ids("image(s) are not in this study", missing)
            return list(dict.fromkeys(chosen))
        page, _total = self.study_images.images(study_id, limit=MAX_IMAGES)
        return sorted(link.image_id for link, _row in page)


def provenance(
    study_id: str, options: DatasetOptions, used: dict[str, list[str]]
) -> dict[str, Any]:
    """Where a dataset came from: the study, each image's annotations as ``id:version``
    (and one digest of them all), the classes, and the split's fraction and seed."""
    digest = hashlib.sha256()
    for image_id in sorted(used):
        digest.update(image_id.encode() + b"=" + ",".join(used[image_id]).encode() + b";")
    return {
        "source": "study-annotations",
        "study_id": study_id,
        "classes": options.classes,
        "annotations": used,
        "annotations_sha256": digest.hexdigest(),
        "objects": sum(len(v) for v in used.values()),
    }
