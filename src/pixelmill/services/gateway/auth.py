"""API-key authentication: ``Authorization: Bearer <key>``; roles read < write < admin.

A gateway process reuses a successful key check for ``security.key_cache_s`` seconds
(2 by default) instead of querying the DB on every request. Revocation still works: a
revoke through this process's repository empties the cache at once; a key revoked
elsewhere (``pixelmill keys revoke``, another gateway) stops working within the TTL.
Unknown and revoked keys are never cached.
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
from pixelmill.backends.metadata.records import ApiKeyRecord
from pixelmill.errors import AuthError, Forbidden
from pixelmill.services.gateway.deps import deps

_RANK = {"read": 0, "write": 1, "admin": 2}


class KeyCache:
    """Recent successful authentications of one process: secret hash -> key record."""

    def __init__(self, keys: KeyRepository, ttl_s: float, size: int = 1024) -> None:
        self.keys = keys
        self.ttl_s = ttl_s
        self.size = size
        self._items: TTLCache[str, ApiKeyRecord] = TTLCache(
            maxsize=size, ttl=max(ttl_s, 1e-9), timer=time.monotonic
        )
        self._revision = keys.revision
        self._lock = threading.Lock()

    def cached(self, secret: str) -> ApiKeyRecord | None:
        """The key whose secret this is when a fresh check is cached; no I/O."""
        if self.ttl_s <= 0:
            return None
        digest = hash_secret(secret)
        with self._lock:
            if self._revision != self.keys.revision:  # a revoke in this process
                self._items.clear()
                self._revision = self.keys.revision
            return self._items.get(digest)

    def authenticate(self, secret: str) -> ApiKeyRecord | None:
        """The live key whose secret this is (from the cache when fresh), or ``None``.
        Blocking: may query the DB."""
        record = self.cached(secret)
        if record is not None or self.ttl_s <= 0:
            return record or self.keys.authenticate(secret)
        digest = hash_secret(secret)
        with self._lock:
            revision = self._revision
        record = self.keys.authenticate(secret)
        with self._lock:
            # a revoke that raced the lookup must not be undone by caching its answer
            if record is not None and revision == self.keys.revision:
                self._items[digest] = record
            else:
                self._items.pop(digest, None)
        return record


def _key_cache(request: Request) -> KeyCache:
    return key_cache(request.app.state)


def key_cache(state: Any) -> KeyCache:
    """The app's key cache (``app.state``, made by ``create_app``)."""
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


def authenticate(request: Request) -> ApiKeyRecord | None:
    """The request's key (blocking: may query the DB); ``None`` without a header."""
    token = _bearer(request)
    if token is None:
        return None
    record = _key_cache(request).authenticate(token)
    if record is None:
        raise AuthError("the API key is unknown or revoked")
    return record


def has_role(record: ApiKeyRecord, role: str) -> bool:
    """True when ``record``'s role is ``role`` or above it."""
    return _RANK[record.role] >= _RANK[role]


def require(
    role: str, *, public_if: Callable[[Request], bool] | None = None
) -> Callable[..., Awaitable[ApiKeyRecord | None]]:
    """A dependency demanding a key of at least ``role`` (unless ``public_if`` says not).

    Asynchronous so that a cached key costs no thread-pool hop; a key that must be
    looked up is looked up in the thread pool."""

    async def dependency(request: Request) -> ApiKeyRecord | None:
        settings = deps(request).settings.security
        if not settings.auth_enabled:
            return None
        token = _bearer(request)
        record: ApiKeyRecord | None = None
        if token is not None:
            cache = _key_cache(request)
            record = cache.cached(token) or await run_in_threadpool(cache.authenticate, token)
            if record is None:
                raise AuthError("the API key is unknown or revoked")
        if record is None:
            if public_if is not None and public_if(request):
                return None
            raise AuthError("this request needs an API key")
        if not has_role(record, role):
            raise Forbidden(f"the key {record.id!r} has role {record.role!r}; {role!r} is needed")
        return record

    return dependency
