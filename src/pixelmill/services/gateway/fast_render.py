"""``GET /v1/images/{image_id}/render`` without FastAPI's routing and dependency
machinery.

A small render costs the gateway less CPU than finding its route: FastAPI matches the
path against each included router in turn, then solves the (empty) dependencies of the
route, parses the query once for them and wraps the call in two exception layers
(``docs/benchmarks.md``, "Render fixed cost"). This ASGI middleware recognises the path
itself and calls the route's own function,
:func:`~pixelmill.services.gateway.routes.images.render`, so the answer is the route's:
the same parsing, signature check, authentication, access decision, caching and render.
Errors become what FastAPI's exception middleware makes of them, through the app's own
handlers (problem+json); an error no handler takes propagates to the outermost
handler as from the route.

The route stays registered (OpenAPI documents it, and a request this middleware leaves
alone reaches it): another method, a path with a trailing slash or with a ``root_path``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pixelmill.services.gateway.routes import images

ROUTE = "/v1/images/{image_id}/render"
#: what Starlette's ``{image_id}`` (a ``str`` convertor: no slash) matches
_PATH = re.compile(r"/v1/images/([^/]+)/render")


class MatchedRoute:
    """What the metrics, the access line and the trace read of a matched route: its
    template (a fast path sets it in the scope, as the router would)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


_RENDER_ROUTE = MatchedRoute(ROUTE)


class FastRender:
    """ASGI middleware: serves ``GET /v1/images/{image_id}/render`` itself (module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            found = _PATH.fullmatch(scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        image_id = found.group(1)
        scope["route"] = _RENDER_ROUTE
        scope["path_params"] = {"image_id": image_id}
        request = Request(scope, receive, send)
        await respond(request, images.render(request, image_id), receive, send)


async def respond(request: Request, answer: Awaitable[Any], receive: Receive, send: Send) -> None:
    """Send ``answer``'s response, or what the app's own handler answers to what it
    raises (a fast path answers as the route would)."""
    try:
        response: Any = await answer
    except Exception as exc:
        handler = exception_handler(request.scope["app"], exc)
        if handler is None:
            raise
        response = await handler(request, exc)
    await response(request.scope, receive, send)


def exception_handler(app: Any, exc: Exception) -> Any:
    """The app's handler for ``exc`` as Starlette's ``ExceptionMiddleware`` finds it (the
    nearest class in its MRO); not the catch-all, which the outermost middleware runs."""
    handlers = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
