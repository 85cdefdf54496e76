"""/v1/models/{name}/permissions: who may read, edit (upload versions) or manage (move
aliases, delete, grant) a registered model. See services/workspace/model_rules.py."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.model_registry import Caller
from pixelmill.services.workspace.access import actor_of
from pixelmill.services.workspace.model_rules import ModelLevel
from pixelmill.services.workspace.principal import Principal

router = APIRouter(tags=["models"])


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: ModelLevel = Field(description="read < edit (upload versions) < manage.")


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.get(
    "/v1/models/{name}/permissions",
    summary="Who holds which level on a model (readers of the model may see it)",
)
def list_permissions(
    request: Request, name: str, key: Principal | None = Depends(require("read"))
) -> dict[str, Any]:
    records = deps(request).models.grants(Caller.of(key), name)
    return {"items": [r.to_json() for r in records]}


@router.get("/v1/models/{name}/permissions/{user_id}", summary="One user's level on a model")
def get_permission(
    request: Request,
    name: str,
    user_id: str,
    key: Principal | None = Depends(require("read")),
) -> dict[str, Any]:
    registry = deps(request).models
    caller = Caller.of(key)
    registry.grants(caller, name)  # 404 unless the caller may read the model
    target = deps(request).users.get(user_id)  # 404 for an unknown user
    level = registry.level(Caller(target.id, target.is_admin), name)
    return {"model": name, "user_id": target.id, "level": level}


@router.put(
    "/v1/models/{name}/permissions/{user_id}",
    summary="Grant a user read, edit or manage on a model (manage needed)",
)
async def put_permission(
    request: Request,
    name: str,
    user_id: str,
    body: Grant,
    key: Principal | None = Depends(require("write")),
) -> dict[str, Any]:
    services = deps(request)

    def grant() -> dict[str, Any]:
        caller = Caller.of(key)
        services.models.authorize(caller, name, "model.grant")
        target = services.users.get(user_id)  # 404 for an unknown user
        record = services.models.grant(
            caller, name, target.id, body.level, actor=actor_of(key, _ip(request))
        )
        return record.to_json()

    return await anyio.to_thread.run_sync(grant)


@router.delete(
    "/v1/models/{name}/permissions/{user_id}",
    status_code=204,
    summary="Revoke a user's level on a model (manage needed)",
)
def delete_permission(
    request: Request,
    name: str,
    user_id: str,
    key: Principal | None = Depends(require("write")),
) -> Response:
    deps(request).models.revoke(Caller.of(key), name, user_id, actor=actor_of(key, _ip(request)))
    return Response(status_code=204)
