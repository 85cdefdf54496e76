"""A study's results for use elsewhere: measurements (CSV, Parquet), annotations
(a zip of QuPath GeoJSON files) and the whole study as an archive that another
pixelmill imports (``POST /v1/studies/import-archive``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from pixelmill.errors import EmptyInput, InvalidInput
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.gateway.routes.images import Spool
from pixelmill.services.gateway.routes.studies import study_json
from pixelmill.services.workspace.access import actor_of
from pixelmill.services.workspace.exports import MEDIA, encode
from pixelmill.services.workspace.principal import Principal

router = APIRouter(prefix="/v1/studies", tags=["studies"])
ZIP: dict[int | str, dict[str, Any]] = {200: {"content": {"application/zip": {}}}}


@router.get(
    "/{study_id}/export/measurements",
    summary="Per-object measurements of the finished analyses, with image and patient "
    "attributes (CSV or Parquet)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}},
)
def export_measurements(
    request: Request,
    study_id: str,
    format: Literal["csv", "parquet"] = Query("csv"),
    principal: Principal = Depends(require("read")),
) -> Response:
    c = deps(request)
    c.access.study(principal, study_id, "study.export")
    missing: list[str] = []
    body = encode(c.exports.measurements(study_id, missing), format)
    _audit(request, principal, study_id, "measurements", format)
    name = f"study-{study_id}-measurements.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if missing:  # images whose results are gone: left out, counted (and the first named)
        named = ", ".join(missing[:20]) + (", ..." if len(missing) > 20 else "")
        headers["Pixelmill-Missing-Results"] = f"{len(missing)}: {named}"
    return Response(body, media_type=MEDIA[format], headers=headers)


@router.get(
    "/{study_id}/export/annotations",
    summary="The study's annotations: a zip of one QuPath GeoJSON file per image",
    response_class=FileResponse,
    responses=ZIP,
)
def export_annotations(
    request: Request, study_id: str, principal: Principal = Depends(require("read"))
) -> FileResponse:
    c = deps(request)
    c.access.study(principal, study_id, "study.export")
    write = partial(c.archives.write_annotations, study_id)
    _audit(request, principal, study_id, "annotations", "zip")
    return _zip_file(request, write, f"study-{study_id}-annotations.zip")


@router.get(
    "/{study_id}/export/archive",
    summary="The study as an archive (manifest.json, objects, annotations) to import "
    "into another pixelmill",
    response_class=FileResponse,
    responses=ZIP,
)
def export_archive(
    request: Request, study_id: str, principal: Principal = Depends(require("read"))
) -> FileResponse:
    c = deps(request)
    c.access.study(principal, study_id, "study.export")
    write = partial(c.archives.write_archive, study_id)
    _audit(request, principal, study_id, "archive", "zip")
    return _zip_file(request, write, f"study-{study_id}.zip")


def _audit(request: Request, principal: Principal, study_id: str, what: str, fmt: str) -> None:
    """Data leaving the site goes to the study's activity feed."""
    ip = request.client.host if request.client else None
    deps(request).events.record(
        actor_of(principal, ip),
        "study.export",
        "study",
        study_id,
        study_id=study_id,
        after={"what": what, "format": fmt},
    )


def _zip_file(request: Request, write: Callable[[IO[bytes]], Any], name: str) -> FileResponse:
    """Write the zip to a temp file on disk (never whole in memory), send it, delete it."""
    root = deps(request).settings.data_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix="export-", suffix=".zip")
    try:
        with os.fdopen(fd, "w+b") as out:
            write(out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return FileResponse(
        tmp,
        media_type="application/zip",
        filename=name,
        background=BackgroundTask(Path(tmp).unlink, missing_ok=True),
    )


@router.post(
    "/import-archive",
    status_code=201,
    summary="Create a study from a study archive (the zip as the body); you own it",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_archive(
    request: Request, response: Response, principal: Principal = Depends(require("write"))
) -> dict[str, Any]:
    c = deps(request)
    if not principal.user_id:
        raise InvalidInput("studies belong to users: log in or use a user's API key")
    spool = Spool(c.settings.data_dir / "tmp", c.settings.ml.max_dataset_bytes)
    try:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.close()
        if spool.size == 0:
            raise EmptyInput("the archive is empty")

        def run() -> Any:
            with spool.path.open("rb") as fh:
                return c.archives.import_archive(actor_of(principal), fh)

        study = await anyio.to_thread.run_sync(run)
    finally:
        spool.discard()
    response.headers["Location"] = f"/v1/studies/{study.id}"
    return study_json(study, "owner")
