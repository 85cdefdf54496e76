"""``POST /v1/models/{ref}/predict`` with a JSON body, without FastAPI's routing and
dependency machinery.

A 256 x 256 prediction is about 40 ms of ONNX Runtime; what the gateway adds on top is
a fixed cost, and on the event loop FastAPI's part of it (matching the path against
each included router in turn, solving the route's dependencies, validating the query
once for them, two exception layers) is a measurable share of it (docs/benchmarks.md,
"ML serving over HTTP"). This ASGI middleware, the pattern of
:mod:`~pixelmill.services.gateway.fast_submit` and
:mod:`~pixelmill.services.gateway.fast_render`, answers the common case with the route's
own function (:func:`~pixelmill.services.gateway.routes.predict.answer`), so checks,
prediction and answer are the route's; errors go through the app's own exception
handlers (problem+json).

Everything else reaches FastAPI unchanged, with the body replayed: image bytes as the
body, a body over 1 MiB, a query the route would refuse or that names other parameters
or one twice, no or a malformed ``Authorization`` header, a key that is unknown,
revoked or lacks ``write``, cookie sessions (their CSRF check), a ``root_path``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import pydantic
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pixelmill.services.gateway.fast_render import MatchedRoute, respond
from pixelmill.services.gateway.fast_submit import NO_KEY, headers_of, read_body, replay, write_key
from pixelmill.services.gateway.routes import predict
from pixelmill.services.workspace.principal import Principal

ROUTE = "/v1/models/{ref}/predict"
#: what Starlette's ``{ref}`` (a ``str`` convertor: no slash) matches
_PATH = re.compile(r"/v1/models/([^/]+)/predict")


_PREDICT_ROUTE = MatchedRoute(ROUTE)


class FastPredict:
    """ASGI middleware: serves JSON predictions itself when it can (module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            found = _PATH.fullmatch(scope["path"])
        headers = headers_of(scope) if found is not None else {}
        media = headers.get(b"content-type", b"").split(b";", 1)[0].strip()
        query = _query(scope) if found is not None and media == b"application/json" else None
        if found is None or query is None:
            await self.app(scope, receive, send)
            return
        body, more = await read_body(receive)
        key: Principal | object = NO_KEY
        if not more:
            key = await write_key(scope["app"].state, _deps(scope), headers.get(b"authorization"))
        if not isinstance(key, Principal):
            await self.app(scope, replay(body, more, receive), send)
            return
        ref = found.group(1)
        scope["route"] = _PREDICT_ROUTE
        scope["path_params"] = {"ref": ref}
        request = Request(scope, replay(body, False, receive), send)
        # drift bookkeeping waits until the answer is sent, not only computed: beside the
        # event loop's send it takes the GIL as it would from the prediction
        with _deps(scope).inference.bookkeeper.serving():
            await respond(request, predict.answer(request, ref, key, query), receive, send)


def _deps(scope: Scope) -> Any:
    return scope["app"].state.deps


def _query(scope: Scope) -> predict.PredictQuery | None:
    """The query as the route validates it, or ``None`` when FastAPI should answer (a
    refusal, an unknown or repeated parameter, an empty value)."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    values = dict(pairs)
    if len(values) != len(pairs) or not all(values.values()):
        return None
    try:
        return predict.PredictQuery.model_validate(values)
    except pydantic.ValidationError:
        return None
