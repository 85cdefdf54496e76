"""/v1/studies/{id}/analyses: run a preset or a model on a study's images, and read
the results (read-only: labels, objects, overlay per image)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pixelmill.backends.metadata.analyses import AnalysisRecord
from pixelmill.errors import ImageTooLarge, InvalidParameter, missing_ids
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.images import ImageService
from pixelmill.services.jobs.artifacts import ARTIFACT_MEDIA
from pixelmill.services.jobs.pipeline_kind import Region
from pixelmill.services.workspace.access import actor_of
from pixelmill.services.workspace.principal import Principal

router = APIRouter(prefix="/v1/studies/{study_id}/analyses", tags=["analyses"])


class NewAnalysis(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(
        None, min_length=1, max_length=80, description="A preset: name or name@version."
    )
    model: str | None = Field(
        None, min_length=1, max_length=200, description="A segmentation model: name@alias."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Preset: {overrides: {op: {...}}}. Model: threshold, scale, min_area, "
        "max_area.",
    )
    image_ids: list[str] = Field(..., min_length=1, max_length=1000)
    region: Region | None = Field(
        None,
        description="Analyse only this rectangle of each image (full-resolution pixels; "
        "inside it, at most render.max_pixels): a region of a whole slide.",
    )


def analysis_json(a: AnalysisRecord) -> dict[str, Any]:
    base = f"/v1/studies/{a.study_id}/analyses/{a.id}"
    images: dict[str, Any] = {}
    for image_id in a.image_ids:
        entry = dict(a.summary.get("images", {}).get(image_id) or {"state": "queued"})
        if entry.get("state") == "succeeded":
            entry["links"] = _links(a, base, image_id, entry)
        images[image_id] = entry
    return {
        "id": a.id,
        "study_id": a.study_id,
        "kind": a.kind,
        "target": a.target,
        "params": a.params,
        "status": a.status,
        "image_ids": a.image_ids,
        "region": a.summary.get("region"),
        "object_count": a.summary.get("object_count"),
        "images": images,
        "job_id": a.job_id,
        "created_by": a.created_by,
        "created_at": a.created_at.isoformat(),
        "updated_at": a.updated_at.isoformat(),
        "links": {"self": base, "job": f"/v1/jobs/{a.job_id}", "promote": f"{base}/promote"},
    }


def _links(a: AnalysisRecord, base: str, image_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Links any member may follow (through the study) and the job's own (its owner's)."""
    mine = f"{base}/images/{image_id}"
    job = f"/v1/jobs/{a.job_id}/tasks/{entry['task']}/results"
    out: dict[str, Any] = {"study": {}, "job": {}}
    for name in entry.get("artifacts", []):
        out["study"][name] = f"{mine}/results/{name}"
        out["job"][name] = f"{job}/{name}"
    if entry.get("result_image"):
        out["study"]["overlay"] = f"{mine}/overlay"
        out["job"]["overlay"] = f"/v1/images/{entry['result_image']}/original"
    return out


@router.post("", status_code=201, summary="Run a preset or a model on images of the study")
def run_analysis(
    request: Request,
    response: Response,
    study_id: str,
    body: NewAnalysis,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "analysis.run")
    image_ids = list(dict.fromkeys(body.image_ids))
    missing = c.analyses.repo.not_in_study(study_id, image_ids)
    if missing:
        raise missing_ids("image(s) are not in this study", missing, field="image_ids")
    if body.region is None:
        _no_whole_slides(c.image_service, image_ids)
    record = c.analyses.run(
        actor_of(principal),
        study_id,
        owner=principal.user_id,
        preset=body.preset,
        model=body.model,
        params=body.params,
        image_ids=image_ids,
        region=body.region.model_dump() if body.region is not None else None,
        # a preset override may name another image (a stain reference): the caller's
        can_read=c.access.input_check(principal),
    )
    response.headers["Location"] = f"/v1/studies/{study_id}/analyses/{record.id}"
    return analysis_json(record)


def _no_whole_slides(images: ImageService, image_ids: list[str]) -> None:
    """A whole slide (over render.max_pixels) is analysed a region at a time: refused
    here (413) rather than failing in its job."""
    limit = images.settings.max_pixels
    slides = [i for i in image_ids if (r := images.record(i)).width * r.height > limit]
    if slides:
        raise ImageTooLarge(
            f"{len(slides)} image(s) are whole slides over render.max_pixels ({limit} "
            "pixels): analyse a region of each (region: {left, top, width, height}; the "
            "viewer's Analyse this region)",
            field="region",
            slides=slides[:50],
            max_pixels=limit,
        )


@router.get("", summary="The study's analyses, newest first, with their status (pages)")
def list_analyses(
    request: Request,
    study_id: str,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=1_000_000),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "analysis.read")
    items, total = c.analyses.repo.page(study_id, limit=limit, offset=offset)
    return {
        "items": [analysis_json(c.analyses.refresh(a)) for a in items],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/{analysis_id}", summary="An analysis: status, per-image summary, result links")
def get_analysis(
    request: Request,
    study_id: str,
    analysis_id: str,
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "analysis.read")
    return analysis_json(c.analyses.refresh(c.analyses.repo.get(study_id, analysis_id)))


@router.get(
    "/{analysis_id}/images/{image_id}/results/{name}",
    summary="One image's result: labels (TIFF), objects, summary (json, csv or arrow)",
    response_class=Response,
    responses={200: {"content": {media: {} for media in ARTIFACT_MEDIA}}},
)
def analysis_result(
    request: Request,
    study_id: str,
    analysis_id: str,
    image_id: str,
    name: str,
    format: Literal["json", "csv", "arrow"] | None = None,
    principal: Principal = Depends(require("read")),
) -> Response:
    c = deps(request)
    c.access.study(principal, study_id, "analysis.read")
    c.access.image(principal, image_id)  # an image taken out of the study: 404 (its objects)
    record = c.analyses.refresh(c.analyses.repo.get(study_id, analysis_id))
    art = c.analyses.artifact(record, image_id, name, format)
    return Response(art.body, media_type=art.media_type)


@router.get(
    "/{analysis_id}/images/{image_id}/overlay",
    summary="The image with the analysis's objects drawn on it (PNG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def analysis_overlay(
    request: Request,
    study_id: str,
    analysis_id: str,
    image_id: str,
    principal: Principal = Depends(require("read")),
) -> Response:
    c = deps(request)
    c.access.study(principal, study_id, "analysis.read")
    c.access.image(principal, image_id)  # an image taken out of the study: 404 (its pixels)
    record = c.analyses.refresh(c.analyses.repo.get(study_id, analysis_id))
    result = c.images.get(c.analyses.result_image(record, image_id))
    body = c.image_service.original_bytes(result.id)
    return Response(body, media_type=f"image/{result.format}")


class Promote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_id: str = Field(..., min_length=1, max_length=64)
    object_ids: list[int] | None = Field(
        None, min_length=1, max_length=20_000, description="Object labels (the 'label' column)."
    )
    all: bool = Field(False, description="Every object of the image (instead of object_ids).")


@router.post(
    "/{analysis_id}/promote",
    status_code=201,
    summary="Copy objects of the analysis into editable annotations of the image",
)
def promote_objects(
    request: Request,
    study_id: str,
    analysis_id: str,
    body: Promote,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    from pixelmill.services.workspace.promote import promote

    if (body.object_ids is None) == (not body.all):
        raise InvalidParameter("name the objects (object_ids) or ask for all of them (all: true)")
    c = deps(request)
    place = c.annotation_desk.place(principal, study_id, body.image_id, "analysis.promote")
    record = c.analyses.refresh(c.analyses.repo.get(study_id, analysis_id))
    ids = promote(
        c.analyses,
        c.annotations,
        actor_of(principal),
        record,
        place,
        None if body.all else sorted(set(body.object_ids or [])),
    )
    return {
        "analysis_id": analysis_id,
        "image_id": body.image_id,
        "created": len(ids),
        "annotation_ids": ids,
        "links": {"annotations": f"/v1/studies/{study_id}/images/{body.image_id}/annotations"},
    }
