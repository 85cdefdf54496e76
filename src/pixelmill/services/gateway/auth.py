"""API-key authentication: ``Authorization: Bearer <key>``; roles read < write < admin."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from pixelmill.backends.metadata.records import ApiKeyRecord
from pixelmill.errors import AuthError, Forbidden

_RANK = {"read": 0, "write": 1, "admin": 2}


def authenticate(request: Request) -> ApiKeyRecord | None:
    header = request.headers.get("authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("use 'Authorization: Bearer <api key>'")
    record = request.app.state.container.keys.authenticate(token.strip())
    if record is None:
        raise AuthError("the API key is unknown or revoked")
    return record


def require(
    role: str, *, public_if: Callable[[Request], bool] | None = None
) -> Callable[..., ApiKeyRecord | None]:
    """A dependency demanding a key of at least ``role`` (unless ``public_if`` says not)."""

    def dependency(request: Request) -> ApiKeyRecord | None:
        settings = request.app.state.container.settings.security
        if not settings.auth_enabled:
            return None
        record = authenticate(request)
        if record is None:
            if public_if is not None and public_if(request):
                return None
            raise AuthError("this request needs an API key")
        if _RANK[record.role] < _RANK[role]:
            raise Forbidden(f"the key {record.id!r} has role {record.role!r}; {role!r} is needed")
        return record

    return dependency
