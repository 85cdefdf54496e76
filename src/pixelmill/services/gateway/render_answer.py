"""Answering a render: the access decision for a stored image, 304 and result-cache
hits at once, a miss computed in a render slot that stops when the client leaves, and
the cache headers (``public`` only when anyone may fetch the answer anyway). Shared by
``/v1/images/{id}/render``, thumbor-style URLs and remote sources."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio
from fastapi import Request, Response

from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.errors import AuthError, NotFound
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.probe import ImageSource
from pixelmill.imaging.render import RenderParams
from pixelmill.observability import metrics
from pixelmill.services.gateway import signing
from pixelmill.services.gateway.deps import deps
from pixelmill.services.images import Rendition
from pixelmill.services.workspace.principal import Principal

#: the largest side an anonymous (opted-in, unsigned) render may ask for, after dpr,
#: zoom and padding
ANONYMOUS_MAX_SIDE = 2048


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(part.strip().removeprefix("W/") == etag for part in header.split(","))


async def render_response(
    request: Request,
    image_id: str,
    params: RenderParams,
    *,
    signed: bool,
    principal: Principal | None,
    references: Sequence[str] = (),
) -> Response:
    """The answer to a render of a stored image (also thumbor-style URLs');
    ``references``: other stored images the caller named (:func:`caller_images`)."""

    def target() -> RenderTarget:
        found = _image_target(request, image_id, params, signed=signed, principal=principal)
        check_images(request, references, signed=signed, principal=principal)
        return found

    return await answer_render(request, params, target)


def caller_images(params: RenderParams, query: Mapping[str, str]) -> tuple[str, ...]:
    """The other stored images a render reads that its caller named (``wm``). A render
    preset's own ``wm`` is the operator's (settings), not the caller's: not listed."""
    return (params.wm,) if params.wm and query.get("wm") else ()


def check_images(
    request: Request, image_ids: Sequence[str], *, signed: bool, principal: Principal | None
) -> None:
    """``404 no image`` (as for an unknown id) for an image named by a render (a
    watermark) that the caller may not read: a signed URL vouches for all its query; a
    caller with a key or a login reads it as the rendered image (``Access.image``); an
    anonymous render only an image that is itself publicly renderable."""
    if signed:
        return
    c = deps(request)
    for image_id in image_ids:
        if principal is not None:
            c.access.image(principal, image_id)
            continue
        public = c.settings.security.public_read or c.study_images.public_render(image_id)
        if not public:
            raise NotFound(f"no image {image_id!r}")
        c.image_service.record(image_id)  # unknown: the same 404


@dataclass(frozen=True)
class RenderTarget:
    """What a render reads: the image's record; whether anyone may fetch the answer
    (then shared caches may keep it); for an image not in storage, its bytes."""

    record: ImageRecord
    public: bool
    source: Callable[[], ImageSource] | None = None


async def answer_render(
    request: Request, params: RenderParams, target: Callable[[], RenderTarget]
) -> Response:
    """304 or a cache hit at once; a miss computed in a render slot, not started (or
    stopped) once the client leaves. ``target``, the cache look-up and the render run in
    one worker thread: one hop off the event loop per request, not two (each hop costs
    the loop more CPU than a small render's look-ups, docs/benchmarks.md "Render fixed
    cost"). The disconnect watch is a plain asyncio task (the gateway runs on asyncio),
    started before the look-up and cancelled after the answer."""
    service = deps(request).image_service
    left = threading.Event()

    def work() -> Response:
        answer = _cached_answer(request, target(), params)
        if isinstance(answer, Response):  # a cache hit or a 304: no render
            return answer
        rendition = service.compute(
            answer.target.record, params, answer.plan, left.is_set, answer.target.source
        )
        return _image_response(rendition, answer.headers)

    watch = asyncio.get_running_loop().create_task(watch_disconnect(request, left))
    try:
        return await anyio.to_thread.run_sync(work)
    finally:
        watch.cancel()


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
    target: RenderTarget
    plan: tuple[ImageFormat, int, str, bool]
    headers: dict[str, str]


def _image_target(
    request: Request,
    image_id: str,
    params: RenderParams,
    *,
    signed: bool,
    principal: Principal | None,
) -> RenderTarget:
    """The stored image a render reads, when the caller may render it."""
    c = deps(request)
    if signed or principal is None:
        record = c.image_service.record(image_id)
        if not signed and not _anonymous_render_ok(request, image_id, params):
            if c.settings.security.auth_enabled:
                raise AuthError("this render needs an API key, a login or a signed URL")
            raise NotFound(f"no image {image_id!r}")
        return RenderTarget(record, public=True)
    return RenderTarget(c.access.image(principal, image_id), public=False)


def _cached_answer(
    request: Request, target: RenderTarget, params: RenderParams
) -> Response | _Miss:
    """The answer when it needs no render (304, cache hit), else what a render needs."""
    c = deps(request)
    service = c.image_service
    accept = request.headers.get("accept")
    plan = service.plan(target.record, params, accept)
    _fmt, _q, key, negotiated = plan
    etag = f'"{key[:40]}"'
    # a shared cache (CDN, proxy) may keep a render only when anyone may fetch it anyway
    audience = "public" if target.public else "private"
    headers = {
        "ETag": etag,
        "Cache-Control": signing.cache_control(
            audience, c.settings.cache.http_max_age, request.query_params
        ),
    }
    if negotiated:
        headers["Vary"] = "Accept"
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    rendition = service.cached(plan)
    if rendition is None:
        return _Miss(target, plan, headers)
    return _image_response(rendition, headers)


def _image_response(rendition: Rendition, headers: dict[str, str]) -> Response:
    headers["X-Cache"] = "HIT" if rendition.cache_hit else "MISS"
    metrics.BYTES_OUT.labels("render").inc(len(rendition.body))
    fmt = rendition.media_type.removeprefix("image/")  # one of the few output formats
    metrics.RENDERS.labels(fmt).inc()
    metrics.RENDER_BYTES.labels(fmt).inc(len(rendition.body))
    return Response(rendition.body, media_type=rendition.media_type, headers=headers)


async def signed_url(request: Request) -> bool:
    """True for a render URL signed with a configured key (public by signature); a
    bad signature is ``403``. Unsigned URLs need a caller who may read the image."""
    security = deps(request).settings.security
    if "sig" not in request.query_params or not (security.signing_key or security.signing_keys):
        return False
    signing.verify(
        security.signing_key, request.url.path, request.url.query, keys=security.signing_keys
    )
    return True
