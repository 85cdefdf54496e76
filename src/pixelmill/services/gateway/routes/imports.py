"""/v1/studies/{id}/imports: bulk import of many images, or zips of them, into a study.

The files stream to disk (never whole into memory), zips are checked before a job
exists (member count, declared sizes, zip-slip paths), and one ``study_import`` job
does the rest; follow it at ``/v1/jobs/{id}`` and ``/v1/jobs/{id}/events`` (SSE)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator, AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from pixelmill.errors import EmptyInput, ImageTooLarge, InvalidInput
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.gateway.filenames import filename_header
from pixelmill.services.gateway.routes.images import Spool
from pixelmill.services.workspace.imports import ImportFile, StudyImports
from pixelmill.services.workspace.principal import Principal

router = APIRouter(prefix="/v1/studies/{study_id}/imports", tags=["studies"])
_CHUNK = 1 << 20


class _DiskParser(MultiPartParser):
    # every file part goes to a temp file from its first bytes (not 1 MB in memory each)
    spool_max_size = 1


async def _capped(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise ImageTooLarge(
                f"the import is larger than the limit of {limit} bytes", max_bytes=limit
            )
        yield chunk


@router.post(
    "",
    status_code=202,
    summary="Import images or zips into the study (multipart 'files', or one zip as the body)",
    responses={202: {"description": "The import job: follow it at /v1/jobs/{id}."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            }
                        },
                    }
                },
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def import_images(
    request: Request,
    response: Response,
    study_id: str,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    await anyio.to_thread.run_sync(partial(c.access.study, principal, study_id, "image.add"))
    if not principal.user_id:
        raise InvalidInput("imported images belong to users: log in or use a user's API key")
    imports = c.imports
    upload = secrets.token_hex(16)
    root = c.settings.data_dir / "tmp"
    files: list[ImportFile] = []
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            await _multipart(request, imports, upload, root, files)
        else:
            name = filename_header(request) or "upload.zip"
            await _one(imports, upload, root, files, request.stream(), name)
        if not files:
            raise EmptyInput("the import holds no files (multipart field 'files')")
        job = await anyio.to_thread.run_sync(
            partial(imports.submit, principal.user_id, study_id, files)
        )
    except BaseException:
        await anyio.to_thread.run_sync(partial(imports.discard, files))
        raise
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return {
        "job_id": job.id,
        "files": len(files),
        "archives": sum(f.archive for f in files),
        "links": {"job": f"/v1/jobs/{job.id}", "events": f"/v1/jobs/{job.id}/events"},
    }


async def _multipart(
    request: Request, imports: StudyImports, upload: str, root: Path, files: list[ImportFile]
) -> None:
    stream = _capped(request.stream(), imports.max_total_bytes + (1 << 20))
    parser = _DiskParser(request.headers, stream, max_files=imports.max_files, max_fields=10)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidInput(f"bad multipart body: {exc.message}") from None
    try:
        for _field, value in form.multi_items():
            if isinstance(value, UploadFile):
                await _one(imports, upload, root, files, _chunks(value), value.filename or "")
    finally:
        await form.close()


async def _chunks(upload_file: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload_file.read(_CHUNK):
        yield chunk


async def _one(
    imports: StudyImports,
    upload: str,
    root: Path,
    files: list[ImportFile],
    chunks: AsyncIterator[bytes],
    name: str,
) -> None:
    spool = Spool(root, imports.max_total_bytes)
    try:
        async for chunk in chunks:
            spool.write(chunk)
        spool.close()
        if spool.size == 0:
            raise EmptyInput(f"{name or 'a file'} is empty")
        item = await anyio.to_thread.run_sync(
            partial(imports.spool, upload, len(files), spool.path, name or f"file-{len(files)}")
        )
        files.append(item)
    finally:
        spool.discard()
