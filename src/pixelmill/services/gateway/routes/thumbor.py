"""thumbor-compatible render URLs at the root: ``/<signature>/<options>/<image id>``
(public, like signed pixelmill URLs) and ``/unsafe/<options>/<image id>`` (only with
``security.thumbor_allow_unsafe``, and then only for callers with a key or a login).

Mounted last, so every other route matches first; and the signature segment only
matches thumbor's signature shape (28 URL-safe base64 characters), so other paths fall
through to whatever is mounted after (the web app) or a plain 404. One exception: a path
that is evidently a signed thumbor URL with a malformed signature (unpadded, the wrong
length, standard base64 with '+' and '/', followed by thumbor options such as
``300x200``) answers ``403 bad-signature`` rather than the web app's page.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Match
from starlette.types import Scope

from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.errors import AuthError, BadSignature, Forbidden, NotFound
from pixelmill.imaging.render import RenderParams, parse_render
from pixelmill.services.gateway import thumbor
from pixelmill.services.gateway.auth import identify
from pixelmill.services.gateway.deps import deps
from pixelmill.services.gateway.render_answer import RenderTarget, answer_render, render_response
from pixelmill.services.web.ui import RESERVED
from pixelmill.services.workspace.principal import Principal


class _Signature(Convertor[str]):
    regex = "[A-Za-z0-9_-]{27}="

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("thumbor_signature", _Signature())

router = APIRouter(tags=["thumbor"])

_IMAGE: dict[int | str, dict[str, Any]] = {200: {"content": {"image/*": {}}}}


@router.get(
    "/unsafe/{options:path}",
    summary="thumbor-compatible render, unsigned (security.thumbor_allow_unsafe)",
    response_class=Response,
    responses=_IMAGE,
)
async def unsafe(request: Request, options: str) -> Response:
    if not deps(request).settings.security.thumbor_allow_unsafe:
        raise Forbidden("unsafe thumbor URLs are off (security.thumbor_allow_unsafe)")
    principal = await identify(request)
    if principal is None:
        raise AuthError("an unsafe thumbor URL needs an API key or a login")
    return await _answer(request, options, signed=False, principal=principal)


@router.get(
    "/{signature:thumbor_signature}/{options:path}",
    summary="thumbor-compatible render, signed with HMAC-SHA1 (security.thumbor_key)",
    response_class=Response,
    responses=_IMAGE,
    # not in the OpenAPI: as a template, "/{signature}/{options}" would claim every
    # two-segment path, which is the web app's; docs/api.md describes these URLs
    include_in_schema=False,
)
async def signed(request: Request, signature: str, options: str) -> Response:
    thumbor.verify(deps(request).settings.security.thumbor_key, signature, options)
    return await _answer(request, options, signed=True, principal=None)


class _MalformedSignature(APIRoute):
    """Matches only ``GET``/``HEAD`` of evidently thumbor paths whose signature segment
    is malformed (:func:`thumbor.malformed_signature`); API paths never."""

    def matches(self, scope: Scope) -> tuple[Match, MutableMapping[str, Any]]:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return Match.NONE, {}
        path = scope["path"].lstrip("/")
        if path.split("/", 1)[0] in RESERVED or not thumbor.malformed_signature(path):
            return Match.NONE, {}
        return super().matches(scope)


async def malformed(request: Request, path: str) -> Response:
    if not deps(request).settings.security.thumbor_key:
        raise BadSignature("thumbor URLs are not enabled (no security.thumbor_key)")
    raise BadSignature(
        "the thumbor URL signature is malformed: it is 28 characters of URL-safe base64 "
        "(A-Z a-z 0-9 - _, ending in '='), as libthumbor builds it"
    )


router.add_api_route(
    "/{path:path}",
    malformed,
    methods=["GET", "HEAD"],
    include_in_schema=False,
    route_class_override=_MalformedSignature,
)


async def _answer(
    request: Request, options: str, *, signed: bool, principal: Principal | None
) -> Response:
    """A stored image's render, or a remote source's (the image part is its URL)."""
    c = deps(request)
    wanted = thumbor.parse(options)
    url = wanted.source_url
    if url is None:
        params = await _params(request, wanted, lambda: c.image_service.record(wanted.image_id))
        return await render_response(
            request, wanted.image_id, params, signed=signed, principal=principal
        )
    sources = c.sources
    if sources is None:
        raise NotFound("remote sources are off on this server (sources.enabled)")
    params = await _params(request, wanted, lambda: sources.record(url))

    def target() -> RenderTarget:
        return RenderTarget(sources.record(url), public=signed, source=lambda: sources.source(url))

    return await answer_render(request, params, target)


async def _params(
    request: Request, wanted: thumbor.ThumborRequest, record: Callable[[], ImageRecord]
) -> RenderParams:
    query = wanted.query
    if wanted.needs_size:  # the source's size, read off the event loop
        found = await anyio.to_thread.run_sync(record)
        width, height = found.width, found.height
        if found.orientation in (5, 6, 7, 8):
            width, height = height, width
        query = wanted.resolve(width, height)
    render = deps(request).settings.render
    return parse_render(query, max_side=render.max_output_side, presets=render.presets)
