"""Health, readiness, metrics and the operation catalogue."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request, Response

from pixelmill.errors import AuthError, NotFound
from pixelmill.imaging import ops
from pixelmill.observability import metrics
from pixelmill.services.gateway.deps import deps

router = APIRouter(tags=["system"])
log = logging.getLogger("pixelmill.gateway")


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: every dependency is reachable")
def readyz(request: Request, response: Response) -> dict[str, Any]:
    checks: dict[str, str] = {}
    for name, check in deps(request).readiness_checks().items():
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:
            # the driver's words (hosts, paths, versions) go to the log, not the wire
            log.warning("readiness: %s unavailable: %s: %s", name, type(exc).__name__, exc)
            checks[name] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    response.status_code = 200 if ready else 503
    return {"status": "ready" if ready else "not ready", "checks": checks}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus(request: Request) -> Response:
    services = deps(request)
    if not services.settings.observability.metrics_enabled:
        raise NotFound("/metrics is turned off (observability.metrics_enabled)")
    token = services.settings.observability.metrics_token
    if token:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {token}".encode()):
            raise AuthError("/metrics needs 'Authorization: Bearer <observability.metrics_token>'")
    metrics.IMAGES_STORED.set(services.images.count())
    body, content_type = metrics.render_latest()
    return Response(body, media_type=content_type)


@router.get("/v1/operations", summary="The operation registry: names, queues, parameter schemas")
def operations() -> dict[str, Any]:
    return {"items": ops.catalogue()}
