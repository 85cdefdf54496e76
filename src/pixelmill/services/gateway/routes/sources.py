"""Render an image fetched by URL, without storing it (remote sources, issue 19).

``GET /v1/sources/render?url=...&w=...`` takes the render parameters of
``/v1/images/{id}/render``. Off unless ``sources.enabled``; then only hosts and buckets on
the allow-lists are fetched, from public addresses (docs/security.md, "Remote sources").
A caller needs an API key or a login, or the URL is signed (``sig``, covering ``url``
too), which also makes the answer cacheable by shared caches.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from pixelmill.errors import AuthError, InvalidParameter, NotFound
from pixelmill.imaging.render import parse_render
from pixelmill.services.gateway.auth import identify
from pixelmill.services.gateway.deps import deps
from pixelmill.services.gateway.render_answer import (
    RenderTarget,
    answer_render,
    caller_images,
    check_images,
    signed_url,
)

router = APIRouter(prefix="/v1/sources", tags=["sources"])


@router.get(
    "/render",
    summary="Render an image fetched by URL (http(s) or s3), without storing it",
    response_class=Response,
    responses={
        200: {"content": {"image/*": {}}},
        304: {"description": "Not modified"},
        403: {"description": "The URL is off the allow-lists or not public"},
        502: {"description": "The source answered an error"},
        504: {"description": "The source was too slow"},
    },
    description=(
        "The render parameters of /v1/images/{id}/render, plus `url`: an http(s):// URL "
        "of an allowed host, or s3://BUCKET/KEY of an allowed bucket. Needs an API key, a "
        "login or a signed URL. See docs/api.md, 'Remote sources'."
    ),
)
async def render_source(
    request: Request,
    url: str | None = Query(None, max_length=4096, description="The source: http(s):// or s3://"),
) -> Response:
    c = deps(request)
    # who is asking comes first: anonymous callers learn nothing, not even parameter rules
    signed = await signed_url(request)
    principal = None if signed else await identify(request)
    if not signed and principal is None:
        raise AuthError("a remote source needs an API key, a login or a signed URL")
    sources = c.sources
    if sources is None:
        raise NotFound("remote sources are off on this server (sources.enabled)")
    if not url:
        raise InvalidParameter("url is required: an http(s):// or s3:// source")
    source_url = url
    render = c.settings.render
    query = {k: v for k, v in request.query_params.items() if k != "url"}
    params = parse_render(query, max_side=render.max_output_side, presets=render.presets)

    references = caller_images(params, query)  # a watermark: the caller's own to read

    def target() -> RenderTarget:
        check_images(request, references, signed=signed, principal=principal)
        return RenderTarget(
            sources.record(source_url),
            public=signed,
            source=lambda: sources.source(source_url),
        )

    return await answer_render(request, params, target)
