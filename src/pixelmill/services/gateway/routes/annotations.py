"""/v1/studies/{sid}/images/{iid}/annotations: GeoJSON annotations of a study image,
every version kept (history, diff, revert), ETag / If-Match on every change, a viewport
query, and QuPath GeoJSON import and export."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from pixelmill.backends.metadata.annotation_geojson import collection_json
from pixelmill.backends.metadata.annotations import MAX_VIEWPORT, AnnotationRecord
from pixelmill.errors import BodyTooLarge, InvalidAnnotation, InvalidParameter
from pixelmill.imaging.annotations import Limits, check_depth, parse_feature
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.bounds import INT32_MAX
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.access import actor_of
from pixelmill.services.workspace.annotations import (
    etag,
    expected_version,
    merge_patch,
    one_feature,
)
from pixelmill.services.workspace.principal import Principal

PREFIX = "/v1/studies/{study_id}/images/{image_id}/annotations"
router = APIRouter(prefix=PREFIX, tags=["annotations"])
#: features one POST may carry (bulk goes through /import)
MAX_POST_FEATURES = 10_000
_IF_MATCH = Header(None, alias="If-Match", description='The ETag you read, e.g. "v3".')
_FEATURE = Body(..., description="A GeoJSON Feature (QuPath properties welcome).")


class Revert(BaseModel):
    version: int = Field(
        ..., ge=1, le=INT32_MAX, description="The version whose content becomes current."
    )


def _user(principal: Principal) -> None:
    if not principal.user_id:
        raise InvalidParameter("annotations belong to users: log in or use a user's API key")


def _one(response: Response, record: AnnotationRecord) -> dict[str, Any]:
    response.headers["ETag"] = etag(record.version)
    return record.to_json()


@router.get(
    "",
    response_class=Response,
    summary="Annotations in a viewport (x, y, w, h), or all of them in pages",
)
def list_annotations(
    request: Request,
    study_id: str,
    image_id: str,
    x: float | None = Query(
        None, allow_inf_nan=False, description="Viewport left, in pixels of `level`."
    ),
    y: float | None = Query(None, allow_inf_nan=False, description="Viewport top."),
    w: float | None = Query(None, gt=0, allow_inf_nan=False, description="Viewport width."),
    h: float | None = Query(None, gt=0, allow_inf_nan=False, description="Viewport height."),
    level: int = Query(0, ge=0, le=30, description="Viewport coordinates are at 2^level."),
    limit: int = Query(1000, ge=1, le=MAX_VIEWPORT),
    class_: list[str] | None = Query(None, alias="class", max_length=50),
    after: str | None = Query(None, max_length=32, description="Paging: the last id seen."),
    principal: Principal = Depends(require("read")),
) -> Response:
    desk = deps(request).annotation_desk
    desk.place(principal, study_id, image_id, "annotation.read")
    viewport = (x, y, w, h)
    if any(v is not None for v in viewport):
        if x is None or y is None or w is None or h is None:
            raise InvalidParameter("a viewport needs all of x, y, w and h")
        scale = 2.0**level
        box = (x * scale, y * scale, w * scale, h * scale)
        found, truncated = desk.repo.viewport_geojson(
            study_id, image_id, box, limit=limit, classes=class_
        )
        return _geojson(collection_json(found, truncated=truncated))
    page = desk.repo.page(study_id, image_id, after=after, limit=limit, classes=class_)
    nxt = None
    if len(page) == limit:
        nxt = f"{PREFIX.format(study_id=study_id, image_id=image_id)}?limit={limit}&after={page[-1].id}"
    return _collection([r.to_json() for r in page], next=nxt)


def _collection(features: list[dict[str, Any]], **extra: Any) -> Response:
    # orjson, not the framework's encoder: a page holds up to 5000 geometries
    body = {"type": "FeatureCollection", "features": features, **extra}
    return _geojson(orjson.dumps(body))


def _geojson(body: bytes) -> Response:
    return Response(body, media_type="application/geo+json")


@router.post("", status_code=201, summary="Create annotations: one Feature or a collection")
def create_annotations(
    request: Request,
    response: Response,
    study_id: str,
    image_id: str,
    body: Any = _FEATURE,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    _user(principal)
    if not isinstance(body, dict | list):  # a JSON string would be parsed again as text
        raise InvalidAnnotation(
            "the body must be a GeoJSON object (a Feature or a FeatureCollection) or an "
            "array of Features",
            problem="not-geojson",
        )
    desk = deps(request).annotation_desk
    place = desk.place(principal, study_id, image_id, "annotation.create")
    annotations = place.parse(body, max_features=MAX_POST_FEATURES)
    ids = desk.repo.create_many(
        actor_of(principal), study_id, image_id, annotations, pixel_size_um=place.pixel_size_um
    )
    if isinstance(body, dict) and body.get("type") == "Feature":
        record = desk.repo.get(ids[0])
        response.headers["Location"] = f"{request.url.path.rstrip('/')}/{record.id}"
        return _one(response, record)
    return {"type": "FeatureCollection", "features": [r.to_json() for r in desk.repo.get_many(ids)]}


@router.post("/import", status_code=201, summary="Import a QuPath GeoJSON export (any size)")
async def import_annotations(
    request: Request,
    study_id: str,
    image_id: str,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    _user(principal)
    c = deps(request)
    cap = c.settings.workspace.annotation_import_max_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge(f"an import is at most {cap} bytes", limit_bytes=cap)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise BodyTooLarge(f"an import is at most {cap} bytes", limit_bytes=cap)
        chunks.append(chunk)
    data = b"".join(chunks)

    def run() -> list[str]:
        desk = c.annotation_desk
        place = desk.place(principal, study_id, image_id, "annotation.create")
        annotations = place.parse(
            data, max_features=c.settings.workspace.annotation_import_max_features
        )
        return desk.repo.create_many(
            actor_of(principal),
            study_id,
            image_id,
            annotations,
            pixel_size_um=place.pixel_size_um,
            source="import",
        )

    ids = await run_in_threadpool(run)
    return {"imported": len(ids), "ids": ids}


@router.get(
    "/export",
    summary="Export as QuPath GeoJSON (a FeatureCollection file)",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def export_annotations(
    request: Request,
    study_id: str,
    image_id: str,
    principal: Principal = Depends(require("read")),
) -> Response:
    desk = deps(request).annotation_desk
    desk.place(principal, study_id, image_id, "annotation.read")
    features = [r.feature() for r in desk.repo.iterate(study_id, image_id)]
    body = orjson.dumps({"type": "FeatureCollection", "features": features})
    name = f"{image_id}-annotations.geojson"
    return Response(
        body,
        media_type="application/geo+json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/{annotation_id}", summary="One annotation (ETag: its version)")
def get_annotation(
    request: Request,
    response: Response,
    study_id: str,
    image_id: str,
    annotation_id: str,
    include_deleted: bool = Query(False, description="Also a deleted one (see its history)."),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    record, _ = deps(request).annotation_desk.annotation(
        principal, study_id, image_id, annotation_id, "annotation.read",
        include_deleted=include_deleted,
    )  # fmt: skip
    return _one(response, record)


@router.put("/{annotation_id}", summary="Replace an annotation (If-Match required)")
def replace_annotation(
    request: Request,
    response: Response,
    study_id: str,
    image_id: str,
    annotation_id: str,
    body: Any = _FEATURE,
    if_match: str | None = _IF_MATCH,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    return _change(request, response, principal, (study_id, image_id, annotation_id),
                   lambda _current: one_feature(body), if_match)  # fmt: skip


@router.patch(
    "/{annotation_id}",
    summary="Change part of an annotation: a JSON merge patch of the Feature (If-Match)",
)
def patch_annotation(
    request: Request,
    response: Response,
    study_id: str,
    image_id: str,
    annotation_id: str,
    body: Any = Body(..., description='e.g. {"properties": {"name": "tumour"}}'),
    if_match: str | None = _IF_MATCH,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidParameter("a merge patch is a JSON object")
    check_depth(body)  # before merge_patch recurses into it
    return _change(request, response, principal, (study_id, image_id, annotation_id),
                   lambda current: merge_patch(current.feature(), body), if_match)  # fmt: skip


def _change(
    request: Request,
    response: Response,
    principal: Principal,
    where: tuple[str, str, str],
    new_feature: Any,
    if_match: str | None,
) -> dict[str, Any]:
    _user(principal)
    expected = expected_version(if_match)
    desk = deps(request).annotation_desk
    current, place = desk.annotation(principal, *where, "annotation.edit")
    feature = new_feature(current)
    annotation = parse_feature(one_feature(feature), Limits(image_size=(place.width, place.height)))
    record = desk.repo.update(
        actor_of(principal),
        current.id,
        annotation,
        expected_version=expected,
        pixel_size_um=place.pixel_size_um,
    )
    return _one(response, record)


@router.delete("/{annotation_id}", status_code=204, summary="Delete (kept in the history)")
def delete_annotation(
    request: Request,
    study_id: str,
    image_id: str,
    annotation_id: str,
    if_match: str | None = _IF_MATCH,
    principal: Principal = Depends(require("write")),
) -> Response:
    _user(principal)
    expected = expected_version(if_match)
    desk = deps(request).annotation_desk
    current, _ = desk.annotation(principal, study_id, image_id, annotation_id, "annotation.delete")
    record = desk.repo.delete(actor_of(principal), current.id, expected_version=expected)
    return Response(status_code=204, headers={"ETag": etag(record.version)})


@router.get("/{annotation_id}/history", summary="Every version, oldest first")
def history(
    request: Request,
    study_id: str,
    image_id: str,
    annotation_id: str,
    snapshots: bool = Query(True, description="Include each version's feature."),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    desk = deps(request).annotation_desk
    current, _ = desk.annotation(
        principal, study_id, image_id, annotation_id, "annotation.read", include_deleted=True
    )
    versions = desk.repo.history(current.id)
    return {
        "annotation_id": current.id,
        "current_version": current.version,
        "deleted": current.deleted_at is not None,
        "items": [v.to_json(with_snapshot=snapshots) for v in versions],
    }


@router.get("/{annotation_id}/diff", summary="What changed between two versions")
def version_diff(
    request: Request,
    study_id: str,
    image_id: str,
    annotation_id: str,
    from_: int | None = Query(
        None, alias="from", ge=1, le=INT32_MAX, description="Default: to - 1."
    ),
    to: int | None = Query(None, ge=1, le=INT32_MAX, description="Default: the current version."),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    desk = deps(request).annotation_desk
    current, _ = desk.annotation(
        principal, study_id, image_id, annotation_id, "annotation.read", include_deleted=True
    )
    new = to or current.version
    old = from_ or max(1, new - 1)
    return {"from": old, "to": new, "changes": desk.repo.diff(current.id, old, new)}


@router.post("/{annotation_id}/revert", summary="Make an old version current (a new version)")
def revert(
    request: Request,
    response: Response,
    study_id: str,
    image_id: str,
    annotation_id: str,
    body: Revert,
    if_match: str | None = Header(None, alias="If-Match", description="Optional here."),
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    _user(principal)
    expected = expected_version(if_match) if if_match else None
    desk = deps(request).annotation_desk
    current, place = desk.annotation(
        principal, study_id, image_id, annotation_id, "annotation.edit", include_deleted=True
    )
    record = desk.repo.revert(
        actor_of(principal),
        current.id,
        body.version,
        expected_version=expected,
        pixel_size_um=place.pixel_size_um,
    )
    return _one(response, record)
