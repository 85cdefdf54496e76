"""Health, readiness, metrics and the operation catalogue."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request, Response

from pixelmill.errors import AuthError, NotFound
from pixelmill.imaging import ops
from pixelmill.observability import metrics
from pixelmill.observability.health import LIVE, readiness
from pixelmill.services.gateway.deps import deps

router = APIRouter(tags=["system"])
log = logging.getLogger("pixelmill.gateway")


@router.get("/livez", summary="Liveness: the process answers")
@router.get("/healthz", summary="Liveness (the older name of /livez)")
def livez() -> dict[str, str]:
    return LIVE


@router.get("/readyz", summary="Readiness: every dependency is reachable, by name")
def readyz(request: Request, response: Response) -> dict[str, Any]:
    ready, body = readiness(deps(request).readiness_checks())
    response.status_code = 200 if ready else 503
    return body


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
