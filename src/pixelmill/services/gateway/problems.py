"""RFC 9457 problem+json at the HTTP edge, for our errors and for framework ones.

What a library said (libvips, ONNX Runtime, a driver) never reaches the client: an
error's ``detail`` is written for the client, and its ``__cause__`` — the library's
exception — is logged here with the request id (``X-Request-ID``, also the problem's
``request_id`` member), so an operator can find it from what the client reports.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelmill.errors import PROBLEM_BASE, PixelmillError
from pixelmill.observability import context

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


def _request_id() -> str:
    """The id of the request being answered (``RequestContextMiddleware`` makes it the
    log context), or ``-`` outside a request."""
    info = context.current_request()
    return info.request_id if info is not None else "-"


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    rid = _request_id()
    if rid != "-":
        body["request_id"] = rid
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


def error_response(exc: PixelmillError, method: str, path: str) -> JSONResponse:
    """The problem+json answer to one of our errors (with ``Retry-After`` or
    ``WWW-Authenticate`` where it applies); internals go to the log only: at ERROR for
    our own 5xx, at WARNING for a remote source's failure (``exc.remote``), at INFO for
    a refusal a library caused."""
    rid = _request_id()
    cause = exc.__cause__
    said = f" ({type(cause).__name__}: {' '.join(str(cause).split())})" if cause else ""
    if exc.remote:  # a remote source failed (502/504): its outage, not ours to alert on
        log.warning("%s %s: source failed [request %s]: %s%s", method, path, rid, exc.detail, said)
    elif exc.status >= 500:
        log.error("%s %s failed [request %s]: %s%s", method, path, rid, exc.detail, said)
    elif cause is not None:
        log.info("%s %s refused [request %s]: %s%s", method, path, rid, exc.detail, said)
    body = exc.problem(instance=path)
    if not exc.public_detail:
        body["detail"] = f"{exc.title}; the details are logged with request id {rid}"
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="pixelmill"'}
    return problem_response(body, headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(PixelmillError)
    async def _ours(request: Request, exc: PixelmillError) -> JSONResponse:
        return error_response(exc, request.method, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": ".".join(str(p) for p in e.get("loc", ())), "msg": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = "the request does not match the API schema"
        if errors:  # the first problem in words, naming its field
            detail += f": {errors[0]['loc']}: {errors[0]['msg']}"
            if len(errors) > 1:
                detail += f" (and {len(errors) - 1} more in 'errors')"
        return problem_response(
            {
                "type": PROBLEM_BASE + "invalid-parameter",
                "title": "Invalid parameter",
                "status": 422,
                "detail": detail,
                "instance": request.url.path,
                "errors": errors,
            }
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            {
                "type": "about:blank",
                "title": str(exc.detail),
                "status": exc.status_code,
                "detail": str(exc.detail),
                "instance": request.url.path,
            },
            dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # only what escapes UnexpectedErrorMiddleware gets here: Starlette calls this
        # outside every middleware, after the request's context has ended
        return unexpected_response(request.method, request.url.path)


def unexpected_response(method: str, path: str) -> JSONResponse:
    """The ``500`` for an exception nothing handled, logged with its traceback (call it
    while that exception is being handled)."""
    log.exception("unhandled error on %s %s [request %s]", method, path, _request_id())
    return problem_response(
        {
            "type": PROBLEM_BASE + "internal",
            "title": "Internal error",
            "status": 500,
            "detail": "an unexpected error occurred; it has been logged",
            "instance": path,
        }
    )


class UnexpectedErrorMiddleware:
    """Answers an exception nothing handled with the ``500`` problem, inside the
    request's context (mount it just inside ``RequestContextMiddleware``): so the answer
    carries ``X-Request-ID`` and the security headers, its body the ``request_id``, and
    the log line the id. The handler :func:`install` registers for ``Exception`` runs in
    Starlette's outermost middleware, where none of that exists any more.

    The exception ends here, answered and logged once; after an answer has started it
    goes on up (the server closes the connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if started:
                raise
            response = unexpected_response(scope["method"], scope["path"])
            await response(scope, receive, send)


#: the schema of every problem+json body (RFC 9457 members, and ours)
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def document(app: FastAPI) -> None:
    """Describe 422 answers as they are sent: problem+json (FastAPI documents its own
    ``HTTPValidationError`` JSON, which the handler above never sends)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = PROBLEM_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                invalid = operation.get("responses", {}).get("422")
                if invalid is not None:
                    invalid["content"] = {PROBLEM_JSON: ref}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
