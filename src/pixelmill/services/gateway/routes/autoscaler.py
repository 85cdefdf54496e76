"""``GET /v1/autoscaler`` (site admins): the live autoscaler's latest decision per
service, as its ``autoscaler.decision`` events in the event log recorded it.

Admin-only: replicas, queue depths and arrival rates are the whole site's load, which
no tenant needs to see (docs/autoscaling.md, "The live autoscaler")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from pixelmill.errors import Forbidden
from pixelmill.services.autoscaler import EVENT
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.principal import Principal

router = APIRouter(tags=["system"])

#: decisions read back to find the latest of each service (far more than services)
SCAN = 500


@router.get(
    "/v1/autoscaler",
    summary="The autoscaler's latest decision per service (site admins)",
)
async def autoscaler_state(
    request: Request, principal: Principal = Depends(require("admin"))
) -> dict[str, Any]:
    if not principal.is_admin:
        raise Forbidden("the autoscaler's state is for site admins")
    events = deps(request).events
    found = await run_in_threadpool(events.list, action=EVENT, limit=SCAN)
    services: dict[str, Any] = {}
    for event in found:  # newest first: the first of a service is its latest
        if event.target_id and event.target_id not in services:
            services[event.target_id] = {**(event.after or {}), "changed_at": event.at.isoformat()}
    return {"services": dict(sorted(services.items()))}
