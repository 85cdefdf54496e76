"""Pure ASGI middlewares (no per-request object churn): request ids, request metrics,
and the security headers every response carries."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelmill.observability import metrics
from pixelmill.services.gateway.docs import STRICT_CSP
from pixelmill.services.gateway.problems import REQUEST_ID

#: a client's own X-Request-ID is kept when it is this plain (it goes into logs)
_CLIENT_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


class RequestIdMiddleware:
    """Gives each request an id (the client's ``X-Request-ID`` when plain, else a new
    one), sent back in ``X-Request-ID`` and in problem bodies, and logged with errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value if _CLIENT_ID.fullmatch(value) else b""
                break
        rid = rid or uuid.uuid4().hex.encode()
        token = REQUEST_ID.set(rid.decode())

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid)]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            REQUEST_ID.reset(token)


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
