"""Health, readiness, metrics and the operation catalogue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from pixelmill.errors import NotFound, PixelmillError
from pixelmill.imaging import ops
from pixelmill.observability import metrics

router = APIRouter(tags=["system"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: every dependency is reachable")
def readyz(request: Request, response: Response) -> dict[str, Any]:
    c = request.app.state.container
    checks: dict[str, str] = {}
    deps: dict[str, Any] = {"database": c.db, "storage": c.storage, "cache": c.cache}
    deps.update({k: v for k, v in c.extras.items() if hasattr(v, "ping")})
    for name, dep in deps.items():
        try:
            dep.ping()
            checks[name] = "ok"
        except PixelmillError as exc:
            checks[name] = exc.detail
        except Exception as exc:
            checks[name] = f"{type(exc).__name__}: {exc}"
    ready = all(v == "ok" for v in checks.values())
    response.status_code = 200 if ready else 503
    return {"status": "ready" if ready else "not ready", "checks": checks}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus(request: Request) -> Response:
    c = request.app.state.container
    if not c.settings.observability.metrics_enabled:
        raise NotFound("/metrics is turned off (observability.metrics_enabled)")
    metrics.IMAGES_STORED.set(c.images.count())
    body, content_type = metrics.render_latest()
    return Response(body, media_type=content_type)


@router.get("/v1/operations", summary="The operation registry: names, queues, parameter schemas")
def operations() -> dict[str, Any]:
    return {"items": ops.catalogue()}
