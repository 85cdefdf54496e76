"""The gateway: one FastAPI app over the services it is given (:class:`GatewayDeps`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from pixelmill import __version__
from pixelmill.observability import metrics, tracing
from pixelmill.services.gateway import docs, problems
from pixelmill.services.gateway.auth import KeyCache
from pixelmill.services.gateway.body_limit import BodyLimitMiddleware
from pixelmill.services.gateway.fast_predict import FastPredict
from pixelmill.services.gateway.fast_render import FastRender
from pixelmill.services.gateway.fast_submit import FastSubmit
from pixelmill.services.gateway.middleware import (
    MetricsMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from pixelmill.services.gateway.ratelimit import Budgets, RateLimitMiddleware, storage_url
from pixelmill.services.gateway.routes import (
    accounts,
    analyses,
    audit,
    autoscaler,
    cell_graphs,
    datasets,
    deepzoom,
    evaluations,
    exports,
    images,
    imports,
    jobs,
    live,
    messages,
    model_permissions,
    models,
    patients,
    predict,
    presets,
    quotas,
    sources,
    studies,
    study_training,
    system,
    thumbor,
    timelapse,
    training,
)
from pixelmill.services.gateway.routes import annotations as annotation_routes
from pixelmill.services.web import ui as web_ui

if TYPE_CHECKING:
    from pixelmill.services.gateway.deps import GatewayDeps

#: Routers mounted on the gateway; later services add theirs here (one line each).
ROUTERS = [
    system.router,
    accounts.router,
    studies.router,
    messages.router,
    live.router,
    audit.router,
    autoscaler.router,
    annotation_routes.router,
    images.router,
    deepzoom.router,
    jobs.router,
    datasets.router,
    models.router,
    predict.router,
    cell_graphs.router,
    timelapse.router,
    training.router,
    evaluations.router,
    patients.router,
    analyses.router,
    study_training.router,
    presets.router,
    imports.router,
    exports.router,
    model_permissions.router,
    sources.router,
    quotas.router,
    thumbor.router,  # last: its /{signature}/... paths match anything
]


def create_app(deps: GatewayDeps) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        deps.startup()
        yield
        deps.shutdown()
        tracing.flush()
        metrics.process_exiting()

    app = FastAPI(
        title="pixelmill",
        version=__version__,
        description="Image processing and image ML as scalable microservices.",
        lifespan=lifespan,
        docs_url=None,  # served from local files by docs.install
        redoc_url=None,
        # our RequestContextMiddleware traces requests (observability.tracing) and
        # MetricsMiddleware counts them; FastAPI's own OpenTelemetry stays off
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        },
    )
    app.state.deps = deps
    app.state.key_cache = KeyCache(deps.keys, deps.accounts, deps.settings.security.key_cache_s)
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    problems.document(app)
    docs_csp = docs.install(app)
    web_ui.install(app)  # the browser UI at /: last, so it never shadows an API route
    settings = deps.settings
    # the last added runs first (outermost)
    app.add_middleware(FastPredict)  # POST /v1/models/{ref}/predict with a JSON body
    app.add_middleware(FastRender)  # GET /v1/images/{id}/render, the hot path
    app.add_middleware(FastSubmit)  # POST /v1/jobs, the hot path (inside the metrics)
    app.add_middleware(BodyLimitMiddleware, limit=settings.server.max_json_bytes)
    if settings.ratelimit.enabled:  # before any body is read or work is done
        url = storage_url(settings.ratelimit, settings.cache.url)
        app.add_middleware(RateLimitMiddleware, budgets=Budgets(settings.ratelimit, url))
    app.add_middleware(MetricsMiddleware)
    # an unhandled error's 500, answered inside the request context (its id, headers)
    app.add_middleware(problems.UnexpectedErrorMiddleware)
    access = logging.INFO if deps.settings.observability.access_log else logging.DEBUG
    # request id (errors are logged with it), log context, span, access line
    app.add_middleware(RequestContextMiddleware, access_level=access)
    # outermost: on every answer, errors too
    app.add_middleware(SecurityHeadersMiddleware, docs_path=docs.DOCS_PATH, docs_csp=docs_csp)
    return app
