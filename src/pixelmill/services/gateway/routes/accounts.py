"""/v1/auth (login, logout, me), /v1/users (admin) and /v1/keys (your API keys)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from pixelmill.backends.metadata.records import ApiKeyRecord
from pixelmill.backends.metadata.users import UserRecord
from pixelmill.errors import Forbidden, InvalidParameter, NotFound
from pixelmill.services.gateway.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    key_cache,
    require,
)
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.access import actor_of
from pixelmill.services.workspace.accounts import LoginFailed
from pixelmill.services.workspace.principal import Principal

router = APIRouter(tags=["accounts"])


class Login(BaseModel):
    username: str = Field(..., min_length=1, max_length=64)
    password: str = Field(..., min_length=1, max_length=1024)


class NewUser(BaseModel):
    username: str = Field(..., min_length=2, max_length=64)
    display_name: str = Field("", max_length=200)
    site_role: Literal["admin", "member"] = "member"
    password: str | None = Field(None, min_length=10, max_length=1024)


class UserChange(BaseModel):
    display_name: str | None = Field(None, max_length=200)
    site_role: Literal["admin", "member"] | None = None
    disabled: bool | None = None


class PasswordChange(BaseModel):
    current_password: str | None = Field(None, max_length=1024)
    new_password: str | None = Field(None, min_length=10, max_length=1024)


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200)
    role: Literal["read", "write", "admin"] = "write"
    user_id: str | None = Field(
        None, max_length=32, description="Whose key (admins: anyone's); yours when absent."
    )


def user_json(user: UserRecord) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "site_role": user.site_role,
        "created_at": user.created_at.isoformat(),
        "disabled": user.disabled_at is not None,
        "locked": user.locked_until is not None,
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def key_json(key: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "user_id": key.user_id,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def _secure(request: Request) -> bool:
    mode = deps(request).settings.workspace.cookie_secure
    if mode != "auto":
        return mode == "always"
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/v1/auth/login", summary="Log in: sets the session cookie and the CSRF cookie")
async def login(request: Request, response: Response, body: Login) -> dict[str, Any]:
    c = deps(request)
    try:
        result = await run_in_threadpool(
            c.accounts.login, body.username, body.password, ip=_ip(request)
        )
    except LoginFailed as exc:
        await asyncio.sleep(exc.delay_s)  # each failure in a row answers later
        raise
    max_age = c.settings.workspace.session_ttl_s
    secure = _secure(request)
    response.set_cookie(
        SESSION_COOKIE,
        result.secret,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
    # readable by the page's script, which echoes it in X-CSRF-Token
    response.set_cookie(
        CSRF_COOKIE,
        result.csrf,
        max_age=max_age,
        httponly=False,
        samesite="strict",
        secure=secure,
        path="/",
    )
    return {"user": user_json(result.user), "csrf_token": result.csrf}


@router.post("/v1/auth/logout", status_code=204, summary="End this browser session")
async def logout(request: Request, principal: Principal = Depends(require("read"))) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        key_cache(request.app.state).forget(cookie)
        await run_in_threadpool(
            deps(request).accounts.logout, cookie, actor_of(principal, _ip(request))
        )
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/v1/auth/me", summary="Who you are, and how you are logged in")
def me(request: Request, principal: Principal = Depends(require("read"))) -> dict[str, Any]:
    body: dict[str, Any] = {
        "scope": principal.scope,
        "via": principal.via,
        "key_id": principal.key_id,
    }
    if principal.user_id:
        body["user"] = user_json(deps(request).users.get(principal.user_id))
    return body


@router.post("/v1/auth/password", status_code=204, summary="Change your own password")
def change_password(
    request: Request, body: PasswordChange, principal: Principal = Depends(require("read"))
) -> Response:
    c = deps(request)
    if not body.new_password or not body.current_password:
        raise InvalidParameter("give current_password and new_password")
    user = c.users.get(principal.user_id)
    c.accounts.login(user.username, body.current_password, ip=_ip(request))  # re-checks
    c.accounts.reset_password(actor_of(principal, _ip(request)), user.id, body.new_password)
    return Response(status_code=204)


# -- users (admins) ---------------------------------------------------------------------
@router.get("/v1/users", summary="List users (admin), by username")
def list_users(
    request: Request,
    limit: int = Query(100, ge=1, le=500),
    after: str | None = Query(None, max_length=64, description="Last username of the page."),
    _admin: Principal = Depends(require("admin")),
) -> dict[str, Any]:
    users = deps(request).users.list(limit=limit, after=after)
    nxt = users[-1].username if len(users) == limit else None
    return {
        "items": [user_json(u) for u in users],
        "next": f"/v1/users?limit={limit}&after={nxt}" if nxt else None,
    }


@router.get("/v1/users/lookup", summary="Find a user by username (to add a study member)")
def lookup_user(
    request: Request,
    username: str = Query(..., max_length=64),
    _who: Principal = Depends(require("read")),
) -> dict[str, Any]:
    return deps(request).users.by_username(username).public()


@router.post(
    "/v1/users", status_code=201, summary="Create a user (admin); returns its password once"
)
def create_user(
    request: Request, body: NewUser, admin: Principal = Depends(require("admin"))
) -> dict[str, Any]:
    user, password = deps(request).accounts.create_user(
        actor_of(admin, _ip(request)),
        body.username,
        password=body.password,
        site_role=body.site_role,
        display_name=body.display_name,
    )
    out = user_json(user)
    if body.password is None:
        out["password"] = password
    return out


@router.patch("/v1/users/{user_id}", summary="Change a user (admin): role, name, disabled")
def change_user(
    request: Request, user_id: str, body: UserChange, admin: Principal = Depends(require("admin"))
) -> dict[str, Any]:
    c = deps(request)
    actor = actor_of(admin, _ip(request))
    if body.disabled is not None:
        if user_id == admin.user_id and body.disabled:
            raise InvalidParameter("you cannot disable yourself")
        c.accounts.set_disabled(actor, user_id, body.disabled)
    if body.site_role is not None:
        c.users.set_site_role(user_id, body.site_role)
        c.events.record(
            actor, "user.role", "user", user_id, after={"site_role": body.site_role}, security=True
        )
    return user_json(c.users.get(user_id))


@router.post("/v1/users/{user_id}/password", summary="Reset a user's password (admin)")
def reset_password(
    request: Request, user_id: str, admin: Principal = Depends(require("admin"))
) -> dict[str, Any]:
    password = deps(request).accounts.reset_password(actor_of(admin, _ip(request)), user_id)
    return {"password": password}


# -- API keys ---------------------------------------------------------------------------
@router.get("/v1/keys", summary="Your API keys (an admin may list anyone's with ?user_id=)")
def list_keys(
    request: Request,
    user_id: str | None = Query(None, max_length=32),
    principal: Principal = Depends(require("read")),
) -> dict[str, Any]:
    if user_id is not None and user_id != principal.user_id and not principal.is_admin:
        raise NotFound(f"no user {user_id!r}")
    keys = deps(request).keys.list(user_id=user_id or principal.user_id)
    return {"items": [key_json(k) for k in keys]}


@router.post(
    "/v1/keys",
    status_code=201,
    summary="Create an API key of yours (an admin may for anyone with user_id); "
    "the secret is shown once",
)
def create_key(
    request: Request, body: NewKey, principal: Principal = Depends(require("write"))
) -> dict[str, Any]:
    if not principal.allows(body.role):
        raise Forbidden(f"you act with {principal.scope!r} scope: no {body.role!r} key")
    c = deps(request)
    owner = body.user_id or principal.user_id
    if owner != principal.user_id:
        # as for listing keys: another user exists only for an admin
        if not principal.is_admin:
            raise NotFound(f"no user {owner!r}")
        if c.users.get(owner).disabled_at is not None:
            raise InvalidParameter(f"user {owner!r} is disabled: enable them first")
    record, secret = c.keys.create(body.name, body.role, user_id=owner)
    c.events.record(
        actor_of(principal, _ip(request)),
        "key.create",
        "key",
        record.id,
        after={"role": body.role, "name": body.name, "user_id": owner},
        security=True,
    )
    return {**key_json(record), "secret": secret}


@router.delete("/v1/keys/{key_id}", summary="Revoke an API key (yours; any, for an admin)")
def revoke_key(
    request: Request, key_id: str, principal: Principal = Depends(require("write"))
) -> dict[str, Any]:
    c = deps(request)
    record = c.keys.get(key_id)
    if record.user_id != principal.user_id and not principal.is_admin:
        raise NotFound(f"no API key {key_id!r}")
    record = c.keys.revoke(key_id)
    c.events.record(actor_of(principal, _ip(request)), "key.revoke", "key", key_id, security=True)
    return key_json(record)
