"""/v1/images: upload, list, read, delete, and on-the-fly render."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.datastructures import UploadFile

from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.errors import AuthError, EmptyInput, ImageTooLarge, InvalidInput, NotFound
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.render import RenderParams, parse_render
from pixelmill.observability import metrics
from pixelmill.services.gateway import signing
from pixelmill.services.gateway.auth import identify, require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.images import Rendition
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


#: the largest side an anonymous (opted-in, unsigned) render may ask for, after dpr,
#: zoom and padding
ANONYMOUS_MAX_SIDE = 2048


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
    filename = request.headers.get("x-filename")
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
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    c = deps(request)
    owner = None if all_images and principal.is_admin else principal.user_id
    if principal.via == "local":
        owner = None
    records = c.images.list(limit=limit, after=after, owner_id=owner)
    next_after = records[-1].id if len(records) == limit else None
    return {
        "items": [image_json(r) for r in records],
        "total": c.images.count(owner_id=owner),
        "next": f"/v1/images?limit={limit}&after={next_after}" if next_after else None,
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
    c.access.image(principal, image_id, write=True)
    c.tiles.forget(c.image_service.delete(image_id))
    return Response(status_code=204)


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(part.strip().removeprefix("W/") == etag for part in header.split(","))


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
    params = parse_render(
        dict(request.query_params), max_side=settings.max_output_side, presets=settings.presets
    )
    signed = await _signed(request)
    principal = None if signed else await identify(request)
    return await render_response(request, image_id, params, signed=signed, principal=principal)


async def render_response(
    request: Request,
    image_id: str,
    params: RenderParams,
    *,
    signed: bool,
    principal: Principal | None,
) -> Response:
    """The answer to a render (also thumbor-style URLs'): 304 or a cache hit at once; a
    miss computed in a render slot, not started (or stopped) once the client leaves."""
    c = deps(request)
    answer = await anyio.to_thread.run_sync(
        lambda: _cached_answer(request, image_id, params, signed=signed, principal=principal)
    )
    if isinstance(answer, Response):  # a cache hit or a 304: no work to watch
        return answer
    # a miss: its render is not started (or is stopped) once the client leaves
    left = threading.Event()
    failure: Exception | None = None
    async with anyio.create_task_group() as watch:
        watch.start_soon(watch_disconnect, request, left)
        try:
            rendition = await anyio.to_thread.run_sync(
                c.image_service.compute, answer.record, params, answer.plan, left.is_set
            )
        except Exception as exc:  # raised outside the task group, not as a group
            failure = exc
        watch.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return _image_response(rendition, answer.headers)


async def _signed(request: Request) -> bool:
    """True for a render URL signed with a configured key (public by signature); a
    bad signature is ``403``. Unsigned URLs need a caller who may read the image."""
    security = deps(request).settings.security
    if "sig" not in request.query_params or not (security.signing_key or security.signing_keys):
        return False
    signing.verify(
        security.signing_key, request.url.path, request.url.query, keys=security.signing_keys
    )
    return True


def _anonymous_render_ok(request: Request, image_id: str, params: RenderParams) -> bool:
    """Anonymous, unsigned renders only where opted in (``security.public_read`` or a
    study's ``public_renders``), and never full-size sources or unstripped metadata."""
    c = deps(request)
    if not (c.settings.security.public_read or c.study_images.public_render(image_id)):
        return False
    sized = params.w or params.h
    sides = (params.w, params.h, params.min_w, params.min_h)
    longest = max(v or 0 for v in sides) * params.dpr * params.zoom
    longest += 2 * max(params.pad or (0,)) * params.dpr  # margins make it bigger too
    small = longest <= ANONYMOUS_MAX_SIDE
    return bool(sized and small and params.strip and params.crop is None)


async def watch_disconnect(request: Request, left: threading.Event) -> None:
    try:
        while (await request.receive())["type"] != "http.disconnect":
            pass  # (a body sent with the GET is not needed)
    except Exception:  # e.g. that body was over its cap: stop watching, keep rendering
        return
    left.set()


@dataclass(frozen=True)
class _Miss:
    record: ImageRecord
    plan: tuple[ImageFormat, int, str, bool]
    headers: dict[str, str]


def _cached_answer(
    request: Request,
    image_id: str,
    params: RenderParams,
    *,
    signed: bool,
    principal: Principal | None,
) -> Response | _Miss:
    """The answer when it needs no render (304, cache hit), else what a render needs."""
    c = deps(request)
    service = c.image_service
    if signed or principal is None:
        record = service.record(image_id)
        if not signed and not _anonymous_render_ok(request, image_id, params):
            if c.settings.security.auth_enabled:
                raise AuthError("this render needs an API key, a login or a signed URL")
            raise NotFound(f"no image {image_id!r}")
    else:
        record = c.access.image(principal, image_id)
    public = signed or principal is None
    accept = request.headers.get("accept")
    plan = service.plan(record, params, accept)
    _fmt, _q, key, negotiated = plan
    etag = f'"{key[:40]}"'
    # a shared cache (CDN, proxy) may keep a render only when anyone may fetch it anyway
    audience = "public" if public else "private"
    headers = {
        "ETag": etag,
        "Cache-Control": f"{audience}, max-age={c.settings.cache.http_max_age}, immutable",
    }
    if negotiated:
        headers["Vary"] = "Accept"
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    rendition = service.cached(plan)
    if rendition is None:
        return _Miss(record, plan, headers)
    return _image_response(rendition, headers)


def _image_response(rendition: Rendition, headers: dict[str, str]) -> Response:
    headers["X-Cache"] = "HIT" if rendition.cache_hit else "MISS"
    metrics.BYTES_OUT.labels("render").inc(len(rendition.body))
    return Response(rendition.body, media_type=rendition.media_type, headers=headers)
