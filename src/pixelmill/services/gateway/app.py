"""The gateway: one FastAPI app over a Container."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from pixelmill import __version__
from pixelmill.services.gateway import problems
from pixelmill.services.gateway.fast_submit import FastSubmit
from pixelmill.services.gateway.middleware import MetricsMiddleware
from pixelmill.services.gateway.routes import datasets, images, jobs, models, system

if TYPE_CHECKING:
    from pixelmill.runtime.container import Container

#: Routers mounted on the gateway; later services add theirs here (one line each).
ROUTERS = [system.router, images.router, jobs.router, datasets.router, models.router]


def create_app(container: Container) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in container.extras.get("on_startup", []):
            hook()
        yield
        for hook in container.extras.get("on_shutdown", []):
            hook()

    app = FastAPI(
        title="pixelmill",
        version=__version__,
        description="Image processing and image ML as scalable microservices.",
        lifespan=lifespan,
    )
    app.state.container = container
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(FastSubmit)  # POST /v1/jobs, the hot path (inside the metrics)
    app.add_middleware(MetricsMiddleware)
    return app
