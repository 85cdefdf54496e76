"""/v1/studies: studies, their members, their images and their activity feed."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pixelmill.backends.metadata.studies import StudyRecord
from pixelmill.backends.metadata.study_images import StudyImageRecord
from pixelmill.errors import InvalidParameter
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.bounds import INT64_MAX, Title
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.access import actor_of
from pixelmill.services.workspace.activity import member_event
from pixelmill.services.workspace.principal import Principal

router = APIRouter(prefix="/v1/studies", tags=["studies"])
Modality = Literal["histology", "cytology", "ihc", "fluorescence", "other"]
Status = Literal["active", "locked", "archived"]
MemberRole = Literal["viewer", "annotator", "analyst", "owner"]


class StudyOptions(BaseModel):
    # a closed set: a misspelt option must not be dropped silently (it reads as "set")
    model_config = ConfigDict(extra="forbid")

    public_renders: bool = Field(
        False, description="Anyone may render (sized, stripped) this study's images."
    )
    keep_originals: bool = Field(
        False, description="Keep the original bytes of de-identified slides on import."
    )
    deidentify_fields: list[str] | None = Field(
        None, max_length=100, description="Metadata fields scrubbed on import (None: defaults)."
    )


class NewStudy(BaseModel):
    name: Title
    description: str = Field("", max_length=20_000)
    modality: Modality = "histology"
    options: StudyOptions = StudyOptions()


class StudyChange(BaseModel):
    name: Title | None = None
    description: str | None = Field(None, max_length=20_000)
    modality: Modality | None = None
    options: StudyOptions | None = None


class StatusChange(BaseModel):
    status: Status


class Member(BaseModel):
    role: MemberRole


class LinkImage(BaseModel):
    image_id: str = Field(..., min_length=1, max_length=64)
    display_name: str = Field("", max_length=200)
    stain: str | None = Field(None, max_length=64)
    magnification: float | None = Field(None, gt=0, le=1000, allow_inf_nan=False)
    pixel_size_um: float | None = Field(None, gt=0, le=1000, allow_inf_nan=False)
    patient_id: str | None = Field(None, max_length=32)


class ImageChange(BaseModel):
    display_name: str | None = Field(None, max_length=200)
    stain: str | None = Field(None, max_length=64)
    magnification: float | None = Field(None, gt=0, le=1000, allow_inf_nan=False)
    pixel_size_um: float | None = Field(None, gt=0, le=1000, allow_inf_nan=False)
    patient_id: str | None = Field(None, max_length=32)


def study_json(
    study: StudyRecord, role: str | None, counts: dict[str, int] | None = None
) -> dict[str, Any]:
    body = study.to_json()
    body["my_role"] = role
    if counts is not None:
        body["counts"] = counts
    body["links"] = {
        "self": f"/v1/studies/{study.id}",
        "images": f"/v1/studies/{study.id}/images",
        "members": f"/v1/studies/{study.id}/members",
        "events": f"/v1/studies/{study.id}/events",
    }
    return body


def study_image_json(link: StudyImageRecord, image: dict[str, Any]) -> dict[str, Any]:
    pixel_size = link.pixel_size_um or image.get("pixel_size_um")
    return {
        "image_id": link.image_id,
        "display_name": link.display_name or image.get("filename") or link.image_id,
        "stain": link.stain,
        "magnification": link.magnification,
        "pixel_size_um": pixel_size,
        "patient_id": link.patient_id,
        "analysis_status": link.analysis_status,
        "added_by": link.added_by,
        "added_at": link.added_at.isoformat(),
        "width": image.get("width"),
        "height": image.get("height"),
        "format": image.get("format"),
        "links": {
            "image": f"/v1/images/{link.image_id}",
            "thumbnail": f"/v1/images/{link.image_id}/render?w=256&h=256&fit=inside&format=webp",
        },
    }


@router.get("", summary="Studies you are a member of, most recently active first")
def list_studies(
    request: Request,
    q: str | None = Query(None, max_length=200, description="Search name and description."),
    status: Status | None = Query(None, description="Only this status."),
    include_archived: bool = Query(
        False, description="Archived studies are hidden unless asked for."
    ),
    modality: Modality | None = None,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=1_000_000),
    all_studies: bool = Query(False, alias="all", description="Admins: every study."),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    statuses: tuple[str, ...] = (
        (status,)
        if status
        else (("active", "locked", "archived") if include_archived else ("active", "locked"))
    )
    user = None if (all_studies and principal.is_admin) else principal.user_id
    rows, total = c.studies.search(
        user_id=user, q=q, statuses=statuses, modality=modality, limit=limit, offset=offset
    )
    counts = c.studies.counts([s.id for s, _ in rows], principal.user_id)
    return {
        "items": [study_json(s, role, counts[s.id]) for s, role in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post("", status_code=201, summary="Create a study (you become its owner)")
def create_study(
    request: Request,
    response: Response,
    body: NewStudy,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    if not principal.user_id:
        raise InvalidParameter("studies belong to users: log in or use a user's API key")
    study = deps(request).studies.create(
        actor_of(principal),
        name=body.name,
        description=body.description,
        modality=body.modality,
        options=body.options.model_dump(),
    )
    response.headers["Location"] = f"/v1/studies/{study.id}"
    return study_json(study, "owner")


@router.get("/{study_id}", summary="A study, with its counts and your role")
def get_study(
    request: Request, study_id: str, principal: Principal = Depends(require("read"))
) -> dict[str, Any]:
    c = deps(request)
    study, role = c.access.study(principal, study_id, "study.read")
    return study_json(study, role, c.studies.counts([study_id], principal.user_id)[study_id])


@router.patch("/{study_id}", summary="Change a study's name, description, modality, options")
def change_study(
    request: Request,
    study_id: str,
    body: StudyChange,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    _study, role = c.access.study(principal, study_id, "study.update")
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise InvalidParameter("nothing to change")
    return study_json(c.studies.update(actor_of(principal), study_id, **changes), role)


@router.post("/{study_id}/status", summary="Lock (read-only), archive (hidden) or reactivate")
def set_status(
    request: Request,
    study_id: str,
    body: StatusChange,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    _study, role = c.access.study(principal, study_id, "study.set_status")
    return study_json(c.studies.update(actor_of(principal), study_id, status=body.status), role)


@router.delete(
    "/{study_id}",
    status_code=204,
    summary="Delete a study and all in it (images stay with their owners)",
)
def delete_study(
    request: Request, study_id: str, principal: Principal = Depends(require("write"))
) -> Response:
    c = deps(request)
    c.access.study(principal, study_id, "study.delete")
    c.studies.delete(actor_of(principal), study_id)
    return Response(status_code=204)


# -- members ----------------------------------------------------------------------------
@router.get("/{study_id}/members", summary="The study's members and their roles")
def members(
    request: Request, study_id: str, principal: Principal = Depends(require("read"))
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "study.read")
    return {"items": c.studies.members(study_id)}


@router.put("/{study_id}/members/{user_id}", summary="Add a member or change their role")
def set_member(
    request: Request,
    study_id: str,
    user_id: str,
    body: Member,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "member.manage")
    c.users.get(user_id)
    c.studies.set_member(actor_of(principal), study_id, user_id, body.role)
    return {"items": c.studies.members(study_id)}


@router.delete("/{study_id}/members/{user_id}", status_code=204, summary="Remove a member")
def remove_member(
    request: Request, study_id: str, user_id: str, principal: Principal = Depends(require("write"))
) -> Response:
    c = deps(request)
    if user_id != principal.user_id:  # anyone may leave; removing others is the owner's
        c.access.study(principal, study_id, "member.manage")
    else:
        c.access.study(principal, study_id, "study.read")
    c.studies.remove_member(actor_of(principal), study_id, user_id)
    return Response(status_code=204)


# -- images -----------------------------------------------------------------------------
@router.get("/{study_id}/images", summary="The study's images, newest first (pages)")
def study_images(
    request: Request,
    study_id: str,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
    patient_id: str | None = Query(None, max_length=32),
    q: str | None = Query(None, max_length=200),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "image.read")
    rows, total = c.study_images.images(
        study_id, limit=limit, offset=offset, patient_id=patient_id, q=q
    )
    return {
        "items": [study_image_json(link, image) for link, image in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post("/{study_id}/images", status_code=201, summary="Add an image you own to the study")
def link_image(
    request: Request,
    response: Response,
    study_id: str,
    body: LinkImage,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "image.add")
    if c.study_images.study_image(study_id, body.image_id) is None:  # linked: nothing new
        c.access.linkable(principal, body.image_id, study_id)
    attrs = body.model_dump(exclude={"image_id"}, exclude_none=True)
    if "patient_id" in attrs:
        _check_patient(request, study_id, attrs["patient_id"])
    created = c.study_images.add_image(actor_of(principal), study_id, body.image_id, **attrs)
    response.status_code = 201 if created else 200
    return _one(request, study_id, body.image_id)


@router.patch("/{study_id}/images/{image_id}", summary="Change an image's study attributes")
def change_image(
    request: Request,
    study_id: str,
    image_id: str,
    body: ImageChange,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "image.update")
    attrs = body.model_dump(exclude_unset=True)
    if not attrs:
        raise InvalidParameter("nothing to change")
    if "display_name" in attrs and attrs["display_name"] is None:
        attrs["display_name"] = ""  # null: back to the file's name
    if attrs.get("patient_id"):
        _check_patient(request, study_id, attrs["patient_id"])
    c.study_images.update_image(actor_of(principal), study_id, image_id, **attrs)
    return _one(request, study_id, image_id)


@router.delete(
    "/{study_id}/images/{image_id}",
    status_code=204,
    summary="Remove an image from the study (the image itself stays)",
)
def unlink_image(
    request: Request, study_id: str, image_id: str, principal: Principal = Depends(require("write"))
) -> Response:
    c = deps(request)
    link = c.study_images.study_image(study_id, image_id)
    c.access.study(principal, study_id, "image.remove", author_id=link.added_by if link else None)
    c.study_images.remove_image(actor_of(principal), study_id, image_id)
    return Response(status_code=204)


def _one(request: Request, study_id: str, image_id: str) -> dict[str, Any]:
    c = deps(request)
    link = c.study_images.study_image(study_id, image_id)
    assert link is not None
    return study_image_json(link, c.images.get(image_id).to_dict())


def _check_patient(request: Request, study_id: str, patient_id: str) -> None:
    if not deps(request).patients.exists(study_id, patient_id):
        raise InvalidParameter(f"no patient {patient_id!r} in this study")


# -- activity ---------------------------------------------------------------------------
@router.get(
    "/{study_id}/events",
    summary="The study's activity feed, newest first (as the live stream shows it)",
)
def study_events(
    request: Request,
    study_id: str,
    before: int | None = Query(
        None, ge=0, le=INT64_MAX, description="Last event id of the previous page."
    ),
    limit: int = Query(50, ge=1, le=500),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "study.read")
    events = c.events.list(study_id=study_id, before_id=before, limit=limit)
    users = c.users.many(sorted({e.actor_id for e in events if e.actor_id}))
    actors = {uid: user.public() for uid, user in users.items()}
    items = [shown for e in events if (shown := member_event(e, actors)) is not None]
    nxt = events[-1].id if len(events) == limit else None
    return {
        "items": items,
        "next": f"/v1/studies/{study_id}/events?limit={limit}&before={nxt}" if nxt else None,
    }
