"""Pure ASGI middlewares (no per-request object churn): the request's context (id, log
fields, trace span, access line), request metrics, and the security headers every
response carries."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelmill.observability import context, metrics, tracing
from pixelmill.observability.logging import ACCESS_FORMAT, ACCESS_LOGGER
from pixelmill.services.gateway.docs import STRICT_CSP

access_log = logging.getLogger(ACCESS_LOGGER)


class RequestContextMiddleware:
    """Gives each request an id (the caller's ``X-Request-ID`` when it is a plain id,
    else a new one; echoed in the response), makes it the log context, opens a SERVER
    span when tracing is on (continuing a caller's ``traceparent``) and logs one access
    line: method, route template, path without its query (signatures live there),
    status, milliseconds; at INFO with ``observability.access_log``, else at DEBUG
    (a line per request costs about a tenth of a small render, docs/benchmarks.md)."""

    def __init__(self, app: ASGIApp, *, access_level: int = logging.DEBUG) -> None:
        self.app = app
        self.access_level = access_level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        carrier: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
            elif name in (b"traceparent", b"tracestate"):
                carrier[name.decode()] = value.decode("latin-1")
        info = context.RequestInfo(context.request_id_from(given), scope)
        echo = (b"x-request-id", info.request_id.encode())
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echo]
            await send(message)

        token = context.begin_request(info)
        try:
            with tracing.http_server_span(scope["method"], scope["path"], carrier) as span:
                try:
                    await self.app(scope, receive, send_wrapper)
                finally:
                    if span is not None:
                        _close_server_span(span, scope, status)
        finally:
            if access_log.isEnabledFor(self.access_level):
                access_log.log(
                    self.access_level,
                    ACCESS_FORMAT,
                    scope["method"],
                    _route(scope),
                    scope["path"],
                    status,
                    (time.perf_counter() - started) * 1000,
                )
            context.end_request(token)


def _route(scope: Scope) -> str:
    route: Any = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def _close_server_span(span: Any, scope: Scope, status: int) -> None:
    route = _route(scope)
    span.update_name(f"{scope['method']} {route}")
    span.set_attributes({"http.route": route, "http.response.status_code": status})
    if status >= 500:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR))


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", "unmatched")
            labels = (scope["method"], path, str(status))
            metrics.HTTP_REQUESTS.labels(*labels).inc()
            metrics.HTTP_LATENCY.labels(*labels).observe(time.perf_counter() - started)


#: sent with every response: no MIME sniffing, no framing, no referrer leaking ids, a
#: strict Content-Security-Policy (no route sets these itself, so they are appended
#: without a look at the others)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", STRICT_CSP.encode()),
)
#: only over TLS (a proxy that terminates it says so in X-Forwarded-Proto)
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeadersMiddleware:
    """Appends :data:`SECURITY_HEADERS` (HSTS too over TLS); the page at ``docs_path``
    gets ``docs_csp`` instead of the strict policy."""

    def __init__(self, app: ASGIApp, *, docs_path: str = "", docs_csp: str = "") -> None:
        self.app = app
        self.docs_path = docs_path
        plain = SECURITY_HEADERS
        docs = (*SECURITY_HEADERS[:-1], (b"content-security-policy", docs_csp.encode()))
        #: (tls, docs page) -> headers
        self._sets = {
            (False, False): plain,
            (True, False): (*plain, HSTS),
            (False, True): docs,
            (True, True): (*docs, HSTS),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https" or (b"x-forwarded-proto", b"https") in scope["headers"]
        extra = self._sets[tls, bool(self.docs_path) and scope["path"] == self.docs_path]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_wrapper)
