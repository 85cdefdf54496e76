"""What the annotation routes share: where an annotation lives (a study image), the
version a write names (``If-Match``), and JSON merge patches (RFC 7396)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pixelmill.backends.metadata.annotations import AnnotationRecord, AnnotationRepository
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.study_images import StudyImageRepository
from pixelmill.errors import InvalidParameter, NotFound, PreconditionRequired
from pixelmill.imaging.annotations import Annotation, parse_geojson
from pixelmill.services.workspace.access import Access
from pixelmill.services.workspace.permissions import Action
from pixelmill.services.workspace.principal import Principal


@dataclass(frozen=True)
class Place:
    """A study image: annotations are checked against its size and measured with its
    pixel size (the study's value, else the image's)."""

    study_id: str
    image_id: str
    width: int
    height: int
    pixel_size_um: float | None

    def parse(self, body: Any, *, max_features: int) -> list[Annotation]:
        return parse_geojson(body, image_size=(self.width, self.height), max_features=max_features)


class AnnotationDesk:
    """Access checks and look-ups in front of :class:`AnnotationRepository`."""

    def __init__(
        self,
        *,
        access: Access,
        annotations: AnnotationRepository,
        study_images: StudyImageRepository,
        images: ImageRepository,
    ) -> None:
        self.access = access
        self.repo = annotations
        self.study_images = study_images
        self.images = images

    def place(self, principal: Principal, study_id: str, image_id: str, action: Action) -> Place:
        """The study image, when the caller may take ``action`` on its annotations
        (``404`` for non-members and for an image the study does not hold)."""
        self.access.study(principal, study_id, action)
        return self._place(study_id, image_id)

    def _place(self, study_id: str, image_id: str) -> Place:
        link = self.study_images.study_image(study_id, image_id)
        if link is None:
            raise NotFound(f"no image {image_id!r} in study {study_id!r}")
        image = self.images.get(image_id)
        return Place(
            study_id,
            image_id,
            image.width,
            image.height,
            link.pixel_size_um or image.pixel_size_um,
        )

    def annotation(
        self,
        principal: Principal,
        study_id: str,
        image_id: str,
        annotation_id: str,
        action: Action,
        *,
        include_deleted: bool = False,
    ) -> tuple[AnnotationRecord, Place]:
        """The annotation, when it is on that study image and the caller may take
        ``action`` on it (its author may edit it at a lower role). ``annotation_id`` is
        32 hex digits or the dashed UUID of the feature's ``id``. A non-member gets the
        same ``404`` whether the annotation exists or not."""
        if action == "annotation.read":  # any member reads: no author to consider
            self.access.study(principal, study_id, action)
        else:
            self._member(principal, study_id)
        record = self.repo.get(annotation_hex(annotation_id), include_deleted=True)
        if (
            record.study_id != study_id
            or record.image_id != image_id
            or (record.deleted_at is not None and not include_deleted)
        ):
            raise NotFound(f"no annotation {annotation_id!r} on this study image")
        if action != "annotation.read":
            self.access.study(principal, study_id, action, author_id=record.author_id)
        return record, self._place(study_id, image_id)

    def _member(self, principal: Principal, study_id: str) -> None:
        """``404`` for a non-member, as :meth:`Access.study` answers, before any look-up."""
        _, role = self.access.studies.role_of(study_id, principal.user_id)
        if role is None and not principal.is_admin:
            raise NotFound(f"no study {study_id!r}")


def annotation_hex(annotation_id: str) -> str:
    """An annotation id of a URL as stored (32 lowercase hex digits): the dashed UUID a
    feature's ``id`` shows is accepted too; anything else is left to be not found."""
    try:
        return uuid.UUID(annotation_id).hex
    except ValueError:
        return annotation_id


def etag(version: int) -> str:
    return f'"v{version}"'


def expected_version(if_match: str | None) -> int:
    """The version an ``If-Match`` header names (``"v3"``, ``W/"v3"`` or ``v3``)."""
    if not if_match or not if_match.strip():
        raise PreconditionRequired(
            'this write needs If-Match: the ETag of the version you read (e.g. "v3")'
        )
    tag = if_match.strip()
    tag = tag[2:] if tag.startswith("W/") else tag
    tag = tag.strip('"')
    if not (tag.startswith("v") and tag[1:].isdigit() and len(tag) < 12):
        raise InvalidParameter(f'If-Match {if_match!r} is not an annotation ETag like "v3"')
    return int(tag[1:])


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7396): members set
    to ``null`` are removed, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def one_feature(body: Any) -> dict[str, Any]:
    """``body`` when it is one GeoJSON Feature (PUT and PATCH change one annotation)."""
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise InvalidParameter('the body must be one GeoJSON Feature ("type": "Feature")')
    return body
