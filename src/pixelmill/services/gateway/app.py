"""The gateway: one FastAPI app over the services it is given (:class:`GatewayDeps`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from pixelmill import __version__
from pixelmill.services.gateway import problems
from pixelmill.services.gateway.auth import KeyCache
from pixelmill.services.gateway.body_limit import BodyLimitMiddleware
from pixelmill.services.gateway.fast_submit import FastSubmit
from pixelmill.services.gateway.middleware import MetricsMiddleware, SecurityHeadersMiddleware
from pixelmill.services.gateway.routes import (
    accounts,
    datasets,
    images,
    jobs,
    models,
    studies,
    system,
)
from pixelmill.services.web import ui as web_ui

if TYPE_CHECKING:
    from pixelmill.services.gateway.deps import GatewayDeps

#: Routers mounted on the gateway; later services add theirs here (one line each).
ROUTERS = [
    system.router,
    accounts.router,
    studies.router,
    images.router,
    jobs.router,
    datasets.router,
    models.router,
]


def create_app(deps: GatewayDeps) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        deps.startup()
        yield
        deps.shutdown()

    app = FastAPI(
        title="pixelmill",
        version=__version__,
        description="Image processing and image ML as scalable microservices.",
        lifespan=lifespan,
    )
    app.state.deps = deps
    app.state.key_cache = KeyCache(deps.keys, deps.accounts, deps.settings.security.key_cache_s)
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    web_ui.install(app)  # the browser UI at /: last, so it never shadows an API route
    app.add_middleware(FastSubmit)  # POST /v1/jobs, the hot path (inside the metrics)
    app.add_middleware(BodyLimitMiddleware, limit=deps.settings.server.max_json_bytes)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: on every answer, errors too
    return app
