"""Who is asking: ``Authorization: Bearer <API key>``, or the browser session cookie.

Every credential resolves to a :class:`~pixelmill.services.workspace.principal.Principal`:
a user and the scope the credential allows (``read < write < admin``; a key's role is
capped by its user's site role). Cookie-authenticated unsafe requests must carry the
session's CSRF token in ``X-CSRF-Token``. Both refusals are in the event log
(``denied.csrf``, ``denied.scope``) with the route refused.

A gateway process reuses a successful check for ``security.key_cache_s`` seconds (2 by
default) instead of querying the DB on every request. Revocation still works: a key
revoke, a logout, or a user's role change, disabling or new password through this
process empties the cache at once; one made elsewhere (the CLI, another gateway) takes
effect within the TTL. Failures are never cached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cachetools import TTLCache
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from pixelmill.backends.metadata.keys import KeyRepository, hash_secret
from pixelmill.backends.metadata.users import SessionRecord
from pixelmill.errors import AuthError
from pixelmill.observability.context import set_user
from pixelmill.services.gateway.audit_trail import refuse
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.accounts import Accounts
from pixelmill.services.workspace.principal import (
    LOCAL,
    Principal,
    Scope,
    key_scope,
    session_scope,
)

SESSION_COOKIE = "pm_session"
CSRF_COOKIE = "pm_csrf"
CSRF_HEADER = "x-csrf-token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class KeyCache:
    """Recent successful authentications of one process, keys and sessions alike:
    secret hash -> principal (and the session, for its CSRF token)."""

    def __init__(
        self, keys: KeyRepository, accounts: Accounts, ttl_s: float, size: int = 4096
    ) -> None:
        self.keys = keys
        self.accounts = accounts
        self.ttl_s = ttl_s
        self._items: TTLCache[str, tuple[Principal, SessionRecord | None]] = TTLCache(
            maxsize=size, ttl=max(ttl_s, 1e-9), timer=time.monotonic
        )
        self._revision = self.revision()
        self._lock = threading.Lock()

    def revision(self) -> tuple[int, int]:
        """Changes with every key revoke and every change of what a user may do made
        through this process (role, disabled, password)."""
        return self.keys.revision, self.accounts.users.revision

    def _get(self, digest: str) -> tuple[Principal, SessionRecord | None] | None:
        if self.ttl_s <= 0:
            return None
        with self._lock:
            current = self.revision()
            if self._revision != current:  # a revoke or user change in this process
                self._items.clear()
                self._revision = current
            return self._items.get(digest)

    def _put(self, digest: str, revision: tuple[int, int], value: Any) -> None:
        with self._lock:
            # a revoke that raced the lookup must not be undone by caching its answer
            if value is not None and revision == self.revision() and self.ttl_s > 0:
                self._items[digest] = value
            else:
                self._items.pop(digest, None)

    def forget(self, secret: str) -> None:
        with self._lock:
            self._items.pop("s:" + hash_secret(secret), None)

    def cached(self, secret: str) -> Principal | None:
        """The key's principal when a fresh check is cached; no I/O."""
        found = self._get("k:" + hash_secret(secret))
        return None if found is None else found[0]

    def authenticate(self, secret: str) -> Principal | None:
        """The principal of the live key whose secret this is, or ``None``. Blocking."""
        digest = "k:" + hash_secret(secret)
        found = self._get(digest)
        if found is not None:
            return found[0]
        revision = self.revision()
        record = self.keys.authenticate(secret)
        principal = None
        if record is not None and record.user_id:
            user = self.accounts.users.get(record.user_id)
            if user.disabled_at is None:
                principal = Principal(
                    user_id=user.id,
                    username=user.username,
                    site_role=user.site_role,
                    scope=key_scope(record.role, user.site_role),
                    key_id=record.id,
                    via="key",
                )
        self._put(digest, revision, None if principal is None else (principal, None))
        return principal

    def session(self, secret: str) -> tuple[Principal, SessionRecord] | None:
        """The principal and session of a live session cookie, or ``None``. Blocking."""
        digest = "s:" + hash_secret(secret)
        found = self._get(digest)
        if found is not None and found[1] is not None:
            return found[0], found[1]
        revision = self.revision()
        live = self.accounts.session(secret)
        if live is None:
            return None
        session, user = live
        principal = Principal(
            user_id=user.id,
            username=user.username,
            site_role=user.site_role,
            scope=session_scope(user.site_role),
            via="session",
        )
        self._put(digest, revision, (principal, session))
        return principal, session


def key_cache(state: Any) -> KeyCache:
    """The app's credential cache (``app.state``, made by ``create_app``)."""
    cache: KeyCache = state.key_cache
    return cache


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("use 'Authorization: Bearer <api key>'")
    return token.strip()


async def identify(request: Request) -> Principal | None:
    """The caller (``None``: anonymous). Raises 401 for a bad key, 403 for a
    cookie-authenticated unsafe request without its CSRF token."""
    if not deps(request).settings.security.auth_enabled:
        return LOCAL
    if hasattr(request.state, "principal"):
        known: Principal | None = request.state.principal
        return known
    cache = key_cache(request.app.state)
    principal: Principal | None = None
    token = _bearer(request)
    if token is not None:
        principal = cache.cached(token) or await run_in_threadpool(cache.authenticate, token)
        if principal is None:
            raise AuthError("the API key is unknown or revoked")
    elif cookie := request.cookies.get(SESSION_COOKIE):
        found = await run_in_threadpool(cache.session, cookie)
        if found is None:
            raise AuthError("the session has ended: log in again")
        principal, session = found
        if request.method not in _SAFE and not Accounts.csrf_ok(
            session, request.headers.get(CSRF_HEADER)
        ):
            raise await refuse(
                request,
                principal,
                "csrf",
                f"a request with the session cookie needs its '{CSRF_HEADER}' header",
            )
    request.state.principal = principal
    set_user(principal.username if principal is not None else None)
    return principal


def require(
    role: Scope, *, public_if: Callable[[Request], bool] | None = None
) -> Callable[..., Awaitable[Principal | None]]:
    """A dependency demanding a caller of at least ``role`` (unless ``public_if`` lets
    an anonymous request through, which then gets ``None``)."""

    async def dependency(request: Request) -> Principal | None:
        principal = await identify(request)
        if principal is None:
            if public_if is not None and public_if(request):
                return None
            raise AuthError("this request needs an API key or a login")
        if not principal.allows(role):
            raise await refuse(
                request,
                principal,
                "scope",
                f"{principal.username!r} acts with {principal.scope!r} scope here; "
                f"{role!r} is needed",
                scope=principal.scope,
                needed=role,
            )
        return principal

    return dependency
