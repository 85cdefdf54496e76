"""/v1/users/{id}/quota: a user's quotas and what they use (``me`` for your own);
admins set a user's own limits (docs/security.md, "Quotas")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from pixelmill.errors import NotFound
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.bounds import INT32_MAX, INT64_MAX
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.access import actor_of
from pixelmill.services.workspace.principal import Principal

router = APIRouter(tags=["accounts"])

_DEFAULT = " Omitted or null: the site default; 0: unlimited."


class QuotaChange(BaseModel):
    """A user's own limits; each replaces the site default for them."""

    model_config = ConfigDict(extra="forbid")

    stored_bytes: int | None = Field(
        None, ge=0, le=INT64_MAX, description="Bytes of images, datasets and models." + _DEFAULT
    )
    concurrent_jobs: int | None = Field(
        None, ge=0, le=INT32_MAX, description="Jobs queued or running at once." + _DEFAULT
    )
    training_minutes: int | None = Field(
        None, ge=0, le=INT32_MAX, description="Training minutes per calendar month." + _DEFAULT
    )
    max_epochs: int | None = Field(
        None, ge=0, le=INT32_MAX, description="Epochs of one training run." + _DEFAULT
    )


def _whose(principal: Principal, user_id: str) -> str:
    """``me`` is the caller; another user's quota is for admins (404 to others, as for
    a user that does not exist)."""
    if user_id == "me":
        user_id = principal.user_id
    if not user_id or (user_id != principal.user_id and not principal.is_admin):
        raise NotFound(f"no user {user_id!r}")
    return user_id


@router.get(
    "/v1/users/{user_id}/quota",
    summary="A user's quotas and usage (`me`: yours; anyone's: admins)",
    description="Limits (null: unlimited), the admin's override they come from, and usage: "
    "stored bytes by kind, jobs queued or running, training minutes of this calendar month.",
)
async def get_quota(
    request: Request, user_id: str, principal: Principal = Depends(require("read"))
) -> dict[str, Any]:
    return await run_in_threadpool(deps(request).quotas.report, _whose(principal, user_id))


@router.put(
    "/v1/users/{user_id}/quota",
    summary="Set a user's own quotas (admin); null fields follow the site defaults",
)
async def set_quota(
    request: Request,
    user_id: str,
    body: QuotaChange,
    admin: Principal = Depends(require("admin")),
) -> dict[str, Any]:
    user_id = _whose(admin, user_id)
    ip = request.client.host if request.client else None
    return await run_in_threadpool(
        deps(request).quotas.set, actor_of(admin, ip), user_id, body.model_dump()
    )
