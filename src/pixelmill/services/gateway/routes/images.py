"""/v1/images: upload, list, read, delete, and on-the-fly render."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.datastructures import UploadFile

from pixelmill.backends.metadata.images import Origin
from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.errors import EmptyInput, ImageTooLarge, InvalidInput
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.render import parse_render
from pixelmill.observability import metrics
from pixelmill.services.gateway import audit_trail
from pixelmill.services.gateway.auth import identify, require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.gateway.filenames import filename_header
from pixelmill.services.gateway.render_answer import caller_images, render_response, signed_url
from pixelmill.services.workspace.principal import Principal

router = APIRouter(prefix="/v1/images", tags=["images"])
_CHUNK = 1024 * 1024


def image_json(record: ImageRecord) -> dict[str, Any]:
    body = record.to_dict()
    body["created_at"] = record.created_at.isoformat()
    body.pop("exif")
    body["links"] = {
        "self": f"/v1/images/{record.id}",
        "original": f"/v1/images/{record.id}/original",
        "render": f"/v1/images/{record.id}/render",
        "meta": f"/v1/images/{record.id}/meta",
        "placeholder": f"/v1/images/{record.id}/placeholder",
    }
    return body


def _readable(request: Request, principal: Principal | None, image_id: str) -> ImageRecord:
    """The image when the caller may read it; ``404`` otherwise (ids cannot be probed)."""
    return deps(request).access.image(principal, image_id)


class Spool:
    """A temp file in the data dir, hashed and size-limited as it is written."""

    def __init__(self, root: Path, limit: int) -> None:
        root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=root, prefix="upload-")
        self.file = os.fdopen(fd, "wb")
        self.path = Path(name)
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise ImageTooLarge(
                f"the upload is larger than the limit of {self.limit} bytes", max_bytes=self.limit
            )
        self.digest.update(chunk)
        self.file.write(chunk)

    def close(self) -> None:
        self.file.close()

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


@router.post(
    "",
    status_code=201,
    summary="Upload an image (multipart field 'file', or the raw bytes as the body)",
    responses={200: {"description": "These bytes were uploaded before; the same image."}},
)
async def upload(
    request: Request, response: Response, principal: Principal = Depends(require("write"))
) -> dict[str, Any]:
    c = deps(request)
    limit = c.settings.server.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise ImageTooLarge(
            f"the upload is larger than the limit of {limit} bytes", max_bytes=limit
        )
    spool = Spool(c.settings.data_dir / "tmp", limit)
    filename = filename_header(request)
    try:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=10)
            upload_file = next((v for v in form.values() if isinstance(v, UploadFile)), None)
            if upload_file is None:
                raise InvalidInput("multipart upload has no file part (use the field 'file')")
            filename = upload_file.filename or filename
            while chunk := await upload_file.read(_CHUNK):
                spool.write(chunk)
            await form.close()
        else:
            async for chunk in request.stream():
                spool.write(chunk)
        spool.close()
        if spool.size == 0:
            raise EmptyInput("the upload is empty")
        metrics.BYTES_IN.inc(spool.size)
        record, created = await anyio.to_thread.run_sync(
            lambda: c.image_service.ingest_file(
                spool.path,
                filename=filename,
                sha256=spool.digest.hexdigest(),
                owner_id=principal.user_id,
            )
        )
    except Exception:
        metrics.UPLOADS.labels("rejected").inc()
        raise
    finally:
        spool.discard()
    metrics.UPLOADS.labels("created" if created else "duplicate").inc()
    after = {"created": created, "filename": filename, "bytes": spool.size, "sha256": record.sha256}
    await anyio.to_thread.run_sync(
        lambda: audit_trail.record(
            request, principal, "image.upload", "image", record.id, after=after
        )
    )
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/images/{record.id}"
    return image_json(record)


@router.get(
    "",
    summary="List your images, newest first (cursor pagination)",
    description="Study images are listed per study (`/v1/studies/{id}/images`). An admin "
    "lists everyone's with `all=true`.",
)
def list_images(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    after: str | None = Query(None, max_length=64, description="Last id of the previous page."),
    all_images: bool = Query(False, alias="all", description="Admins: every user's images."),
    origin: Origin | None = Query(
        None,
        description="Only uploads (`upload`: uploaded, imported, fetched) or only what jobs "
        "made (`result`: masks, overlays, model output); both when absent.",
    ),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    owner = None if all_images and principal.is_admin else principal.user_id
    if principal.via == "local":
        owner = None
    records = c.images.list(limit=limit, after=after, owner_id=owner, origin=origin)
    next_after = records[-1].id if len(records) == limit else None
    more = f"&origin={origin}" if origin else ""
    return {
        "items": [image_json(r) for r in records],
        "total": c.images.count(owner_id=owner, origin=origin),
        "next": f"/v1/images?limit={limit}&after={next_after}{more}" if next_after else None,
    }


@router.get("/{image_id}", summary="Image metadata, with its placeholder")
def get_image(
    request: Request,
    image_id: str,
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    record = _readable(request, principal, image_id)
    body = image_json(record)
    body["placeholder"] = deps(request).image_service.placeholder(record)
    return body


@router.get(
    "/{image_id}/placeholder",
    summary="BlurHash and a tiny LQIP data URI to show while the image loads",
)
def get_placeholder(
    request: Request,
    image_id: str,
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    record = _readable(request, principal, image_id)
    found = deps(request).image_service.placeholder(record)
    return {"id": record.id, "width": record.width, "height": record.height, **found}


@router.get("/{image_id}/meta", summary="Embedded metadata (EXIF and file properties)")
def get_meta(
    request: Request,
    image_id: str,
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    record = _readable(request, principal, image_id)
    return {
        "id": record.id,
        "format": record.format,
        "orientation": record.orientation,
        "pages": record.pages,
        "pixel_size_um": record.pixel_size_um,
        "exif": record.exif,
    }


@router.get(
    "/{image_id}/original",
    summary="Download the original bytes",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}},
)
def get_original(
    request: Request,
    image_id: str,
    principal: Principal = Depends(require("read")),
) -> Response:
    c = deps(request)
    record = _readable(request, principal, image_id)
    etag = f'"{record.sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    body = c.storage.get(record.storage_key)
    metrics.BYTES_OUT.labels("original").inc(len(body))

    return Response(body, media_type=ImageFormat(record.format).mime, headers=headers)


@router.delete("/{image_id}", status_code=204, summary="Delete an image and its original")
def delete_image(
    request: Request, image_id: str, principal: Principal = Depends(require("write"))
) -> Response:
    c = deps(request)
    image = c.access.image(principal, image_id, write=True)
    deleted = c.image_service.delete(image_id)  # the image, then its overlays
    for record in deleted:
        c.tiles.forget(record)
    after = {
        "owner_id": image.owner_id,
        "sha256": image.sha256,
        "also": [r.id for r in deleted[1:]],
    }
    audit_trail.record(request, principal, "image.delete", "image", image_id, after=after)
    return Response(status_code=204)


@router.get(
    "/{image_id}/render",
    summary="Render a transformed image on the fly",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, 304: {"description": "Not modified"}},
    description=(
        "Query parameters: w, h, dpr, zoom, min-w, min-h, "
        "fit (cover|contain|fill|inside|outside|fill-down), enlarge, gravity, offset=x,y, "
        "fp=x,y, crop=left,top,width,height or width,height, trim, trim_colour, pad, extend, "
        "rotate, bg, flip, flop, orient, blur, sharpen, grayscale, brightness, contrast, gamma, "
        "wm, wm_text, wm_pos, wm_opacity, wm_scale, frame, page, "
        "format (jpeg|png|webp|avif|tiff|gif|auto), q, max_bytes, progressive, lossless, "
        "preset, strip, icc (srgb|keep), depth (8|16), sig. See docs/api.md."
    ),
)
async def render(request: Request, image_id: str) -> Response:
    settings = deps(request).settings.render
    query = dict(request.query_params)
    params = parse_render(query, max_side=settings.max_output_side, presets=settings.presets)
    signed = await signed_url(request)
    principal = None if signed else await identify(request)
    # a watermark image is read with the caller's access too (404 as for an unknown id)
    references = caller_images(params, query)
    return await render_response(
        request, image_id, params, signed=signed, principal=principal, references=references
    )
