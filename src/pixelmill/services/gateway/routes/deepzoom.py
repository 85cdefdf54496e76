"""/v1/images/{id}/dzi.dzi and /v1/images/{id}/dzi_files/{level}/{col}_{row}.{format}:
the DeepZoom pyramid of any stored image, read from the best level the original holds
(so whole slides over the render pixel limit open and pan), for OpenSeadragon.

Who may read: as for renders — the image's owner, members of a study that holds it,
admins; anonymous callers where opted in (``security.public_read``, a study's
``public_renders``); anyone with a signed URL. One signature serves a whole pyramid: it
is made over the path ``/v1/images/{id}/dzi`` (``signing.sign_url``) and its query
(``expires``, ``kid``, ``sig``) is added to the descriptor's URL, which OpenSeadragon
passes on to every tile URL.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response

from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.errors import AuthError, NotFound
from pixelmill.observability import metrics
from pixelmill.services.deepzoom import TILE_VERSION, Tile
from pixelmill.services.gateway import signing
from pixelmill.services.gateway.auth import identify
from pixelmill.services.gateway.deps import deps
from pixelmill.services.gateway.render_answer import etag_matches, watch_disconnect

router = APIRouter(prefix="/v1/images", tags=["images"])

_WHOLE = re.compile(r"[0-9]{1,9}")


@router.get(
    "/{image_id}/dzi.{kind}",
    summary="The DeepZoom descriptor of an image (kind: dzi or xml for XML, json)",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}, "application/json": {}}}},
)
async def descriptor(request: Request, image_id: str, kind: str) -> Response:
    record, public = await _reader_may(request, image_id)  # who asks comes first
    if kind not in ("dzi", "xml", "json"):
        raise NotFound(f"no descriptor dzi.{kind}: dzi.dzi, dzi.xml or dzi.json")
    tiles = deps(request).tiles
    body = await anyio.to_thread.run_sync(lambda: tiles.descriptor(record, json=kind == "json"))
    etag = f'"{record.sha256[:32]}-{TILE_VERSION}-{kind}"'
    headers = _cache_headers(request, public, etag)
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if isinstance(body, str):
        return Response(body, media_type="application/xml", headers=headers)
    return Response(json.dumps(body), media_type="application/json", headers=headers)


@router.get(
    "/{image_id}/dzi_files/{level}/{col}_{row}.{fmt}",
    summary="One DeepZoom tile (fmt: jpeg, jpg, png, webp)",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, 304: {"description": "Not modified"}},
)
async def tile(
    request: Request, image_id: str, level: str, col: str, row: str, fmt: str
) -> Response:
    # who asks comes first: anonymous callers learn nothing, not even the path's rules
    record, public = await _reader_may(request, image_id)
    if not all(_WHOLE.fullmatch(part) for part in (level, col, row)):
        raise NotFound(f"no tile {level}/{col}_{row}: whole numbers only")
    where = (int(level), int(col), int(row))
    tiles = deps(request).tiles
    key = tiles.key(record, *where, fmt)
    headers = _cache_headers(request, public, f'"{key[:40]}"')
    if etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    found = await anyio.to_thread.run_sync(tiles.cached, key, fmt)
    if found is None:
        found = await _compute(request, record, where, fmt)
    headers["X-Cache"] = "HIT" if found.cache_hit else "MISS"
    metrics.BYTES_OUT.labels("tile").inc(len(found.body))
    return Response(found.body, media_type=found.media_type, headers=headers)


async def _compute(
    request: Request, record: ImageRecord, where: tuple[int, int, int], fmt: str
) -> Tile:
    """A tile made in a render slot, not started (or stopped) once the client leaves."""
    tiles = deps(request).tiles
    left = threading.Event()
    failure: Exception | None = None
    made: Tile | None = None
    async with anyio.create_task_group() as watch:
        watch.start_soon(watch_disconnect, request, left)
        try:
            made = await anyio.to_thread.run_sync(tiles.compute, record, *where, fmt, left.is_set)
        except Exception as exc:  # raised outside the task group, not as a group
            failure = exc
        watch.cancel_scope.cancel()
    if failure is not None:
        raise failure
    assert made is not None
    return made


async def _reader_may(request: Request, image_id: str) -> tuple[ImageRecord, bool]:
    """The image when the caller may read it, and whether anyone may (a shared cache
    may keep the answer). ``404`` for images the caller may not see."""
    c = deps(request)
    security = c.settings.security
    if "sig" in request.query_params and (security.signing_key or security.signing_keys):
        # the pyramid's one signature: over /v1/images/{id}/dzi, whatever the file
        path = f"/v1/images/{image_id}/dzi"
        signing.verify(security.signing_key, path, request.url.query, keys=security.signing_keys)
        return await anyio.to_thread.run_sync(c.image_service.record, image_id), True
    principal = await identify(request)
    if principal is not None:
        return await anyio.to_thread.run_sync(lambda: c.access.image(principal, image_id)), False
    opted_in = security.public_read or await anyio.to_thread.run_sync(
        c.study_images.public_render, image_id
    )
    if opted_in:
        return await anyio.to_thread.run_sync(c.image_service.record, image_id), True
    if security.auth_enabled:
        raise AuthError("these tiles need an API key, a login or a signed URL")
    raise NotFound(f"no image {image_id!r}")


def _cache_headers(request: Request, public: bool, etag: str) -> dict[str, Any]:
    audience = "public" if public else "private"
    max_age = deps(request).settings.cache.http_max_age
    control = signing.cache_control(audience, max_age, request.query_params)
    return {"ETag": etag, "Cache-Control": control}
