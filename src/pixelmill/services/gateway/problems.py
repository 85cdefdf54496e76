"""RFC 9457 problem+json at the HTTP edge, for our errors and for framework ones."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pixelmill.errors import PROBLEM_BASE, PixelmillError

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


def error_response(exc: PixelmillError, method: str, path: str) -> JSONResponse:
    """The problem+json answer to one of our errors (with ``Retry-After`` or
    ``WWW-Authenticate`` where it applies)."""
    if exc.status >= 500:
        log.error("%s %s failed: %s", method, path, exc.detail)
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="pixelmill"'}
    return problem_response(exc.problem(instance=path), headers)


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
        return problem_response(
            {
                "type": PROBLEM_BASE + "invalid-parameter",
                "title": "Invalid parameter",
                "status": 422,
                "detail": "the request does not match the API schema",
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
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            {
                "type": PROBLEM_BASE + "internal",
                "title": "Internal error",
                "status": 500,
                "detail": "an unexpected error occurred; it has been logged",
                "instance": request.url.path,
            }
        )
