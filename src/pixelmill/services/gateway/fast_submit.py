"""``POST /v1/jobs`` without FastAPI's per-request machinery, for the requests that
succeed (or fail inside the job service).

Submitting is the hot path of an async-job platform, and per submit FastAPI's routing,
dependency resolution, request-body validation and exception middleware cost more CPU
than the job service's own work (``docs/benchmarks.md``, "Async jobs"). This ASGI
middleware answers the common case itself, with the route's own pieces:
:class:`~pixelmill.services.gateway.routes.jobs.JobRequest` validates the body,
``submit_arguments``/``submit_response`` build the call and the answer,
``audit_trail.submit_job`` submits and logs it (``job.submit``), the gateway's key cache
authenticates, and our errors from the job service become the same
problem+json as through FastAPI (``problems.error_response``).

Everything else goes to FastAPI unchanged, with the body replayed: a body that is not a
valid ``JobRequest``, no or a malformed ``Authorization`` header, a key that is unknown,
revoked or lacks the ``write`` role, an ``Idempotency-Key`` header over 200 characters,
a content type other than JSON, or a request the route itself refuses before submitting
(``InvalidParameter``). Those get exactly the route's answer (401, 403, 422, ...), and
the route stays what OpenAPI documents. Nothing is replayed once the job service has
been called, so no request can submit twice.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import pydantic
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelmill.errors import PixelmillError
from pixelmill.observability.context import set_user
from pixelmill.services.gateway.audit_trail import submit_job
from pixelmill.services.gateway.auth import key_cache
from pixelmill.services.gateway.problems import error_response
from pixelmill.services.gateway.routes.jobs import (
    JobRequest,
    submit_arguments,
    submit_response,
)
from pixelmill.services.workspace.principal import LOCAL, Principal

if TYPE_CHECKING:
    from pixelmill.services.gateway.deps import GatewayDeps

PATH = "/v1/jobs"
NO_KEY = object()  # the request needs FastAPI's answer (401/403)


class _SubmitRoute:
    """What the metrics and the trace read of a matched route (FastAPI's included routers
    are not a flat list to look the route up in)."""

    path = PATH


_SUBMIT_ROUTE = _SubmitRoute()


class FastSubmit:
    """ASGI middleware: serves ``POST /v1/jobs`` itself when it can (see module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        body, more = await read_body(receive)
        answer = None if more else await self._try_submit(scope, body)
        if answer is None:
            await self.app(scope, replay(body, more, receive), send)
            return
        scope["route"] = _SUBMIT_ROUTE  # the metrics label and span name, as routed
        await answer(scope, receive, send)

    async def _try_submit(self, scope: Scope, body: bytes) -> Any:
        """The response, or ``None`` when FastAPI should answer."""
        headers = headers_of(scope)
        if headers.get(b"content-type", b"").split(b";", 1)[0].strip() != b"application/json":
            return None
        header_key = headers.get(b"idempotency-key")
        if header_key is not None and len(header_key) > 200:
            return None
        state = scope["app"].state
        services: GatewayDeps = state.deps
        key = await write_key(state, services, headers.get(b"authorization"))
        if key is NO_KEY:
            return None
        try:
            request = JobRequest.model_validate_json(body)
            arguments = submit_arguments(
                request, header_key.decode("latin-1") if header_key else None, key
            )
        except (pydantic.ValidationError, PixelmillError):
            return None  # FastAPI answers with the same checks (422)
        client = scope.get("client")
        try:
            job, created = await run_in_threadpool(
                partial(submit_job, services, key, arguments, client[0] if client else None)
            )
        except PixelmillError as exc:
            return error_response(exc, "POST", PATH)
        return submit_response(job, created)


async def write_key(state: Any, services: GatewayDeps, header: bytes | None) -> Any:
    """The caller when it may submit with an API key (``LOCAL`` with auth off), else
    ``NO_KEY`` (cookie sessions take the ordinary route, with its CSRF check)."""
    if not services.settings.security.auth_enabled:
        return LOCAL
    if header is None:
        return NO_KEY
    scheme, _, token = header.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return NO_KEY
    cache = key_cache(state)
    record: Principal | None = cache.cached(token) or await run_in_threadpool(
        cache.authenticate, token
    )
    if record is None or not record.allows("write"):
        return NO_KEY
    set_user(record.username)
    return record


def headers_of(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope["headers"]}


async def read_body(receive: Receive, limit: int = 1 << 20) -> tuple[bytes, bool]:
    """The request body up to ``limit`` bytes; ``more`` is True when it is longer (or the
    client left), and the rest is left for FastAPI to read."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False
        if size > limit:
            return b"".join(chunks), True


def replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """A ``receive`` that hands FastAPI the body read so far, then the rest."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay
