"""Request budgets per API key and per client address (the ``ratelimit`` settings).

Every request spends cost units of a budget that refills continuously over
``window_s`` (the ``limits`` library's sliding-window counter: a token bucket of
``per_key`` / ``per_ip`` units, O(1) per identity, on Redis shared by every gateway).
A request with ``Authorization`` spends the budget of that credential (its SHA-256,
never decoded); one without spends its client address's. The cost is the route's
class: render/predict, upload, job submit, or anything else. Over budget: ``429``
problem+json with ``Retry-After``; every limited answer carries the IETF draft's
``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``.

Failed authentication (a ``401`` to a request that presented credentials) charges the
address ``cost_auth_failure`` of a separate budget of ``per_ip`` units: after a few
wrong keys, every request with credentials from that address is refused until the
window moves on (slowdown, then lockout), so guessing keys is slow from one address.

When the budget store (Redis) is unreachable requests are let through and a warning is
logged: the limiter protects capacity, it never takes the gateway down. After a failure
the store is left alone for :data:`RETRY_STORE_S` seconds, so a hung Redis costs one
socket timeout (0.5 s) per that time, not one per request.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelmill.errors import RateLimited
from pixelmill.observability import metrics
from pixelmill.services.gateway.problems import error_response

if TYPE_CHECKING:
    from pixelmill.settings import RateLimitSettings

log = logging.getLogger(__name__)

_RENDER = re.compile(r"^/v1/(images/[^/]+/render|sources/render|models/[^/]+/predict)/?$")
_UPLOAD = re.compile(r"^/v1/(images|datasets|models/[^/]+/versions)/?$")
_JOBS = re.compile(r"^/v1/jobs/?$")
#: seconds without budgets after the store failed
RETRY_STORE_S = 5.0
#: probes are never limited (scrapers of /metrics are: its token can be guessed)
EXEMPT = frozenset({"/healthz", "/readyz"})


def route_cost(settings: RateLimitSettings, method: str, path: str) -> int:
    """The cost units a request spends, by its route's class."""
    if method in ("GET", "HEAD") and _RENDER.match(path):
        return settings.cost_render
    if method == "POST":
        if _RENDER.match(path):
            return settings.cost_render
        if _UPLOAD.match(path):
            return settings.cost_upload
        if _JOBS.match(path):
            return settings.cost_job_submit
    return settings.cost_other


def storage_url(settings: RateLimitSettings, cache_url: str) -> str:
    """``ratelimit.storage_url``, or the cache's Redis when it has one, else memory."""
    if settings.storage_url:
        return settings.storage_url
    if cache_url.startswith(("redis://", "rediss://")):
        return cache_url
    return "memory://"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # seconds until the budget is whole again (or enough for a retry)
    reason: str = ""
    budget: str = "address"  # whose budget: key, address or auth_failures


class Budgets:
    """The budgets of one gateway process, on ``memory://`` or ``redis://`` storage."""

    def __init__(self, settings: RateLimitSettings, url: str) -> None:
        from limits import RateLimitItemPerSecond
        from limits.storage import storage_from_string
        from limits.strategies import SlidingWindowCounterRateLimiter

        self.settings = settings
        self.url = url
        self.blocking = not url.startswith("memory://")  # network I/O: off the event loop
        window = settings.window_s
        self.per_key = RateLimitItemPerSecond(settings.per_key, window, namespace="pm-key")
        self.per_ip = RateLimitItemPerSecond(settings.per_ip, window, namespace="pm-ip")
        self.failures = RateLimitItemPerSecond(settings.per_ip, window, namespace="pm-authfail")
        if url.startswith("memory://"):
            store: Any = _lean_memory_storage()
        else:
            store = storage_from_string(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.limiter = SlidingWindowCounterRateLimiter(store)
        self._warned = 0.0
        self.down_until = 0.0

    def spend(self, item: Any, identity: str, cost: int) -> Verdict:
        """Spend ``cost`` of ``identity``'s budget ``item`` (blocking on Redis)."""
        allowed = self.limiter.hit(item, identity, cost=cost) if cost else True
        return self._verdict(item, identity, allowed)

    def exhausted(self, item: Any, identity: str, cost: int) -> Verdict | None:
        """The verdict when ``identity`` cannot afford ``cost`` of ``item``, else ``None``."""
        if self.limiter.test(item, identity, cost=min(max(1, cost), item.amount)):
            return None
        return self._verdict(item, identity, False)

    def _verdict(self, item: Any, identity: str, allowed: bool) -> Verdict:
        reset_at, remaining = self.limiter.get_window_stats(item, identity)
        reset_s = max(1, math.ceil(reset_at - time.time()))
        return Verdict(allowed, item.amount, max(0, remaining), reset_s)

    def warn(self, exc: Exception) -> None:
        now = time.monotonic()
        self.down_until = now + RETRY_STORE_S
        if now - self._warned > 60:
            self._warned = now
            log.warning("rate limits not enforced, the budget store is unavailable: %r", exc)


def _lean_memory_storage() -> Any:
    """``limits``' memory storage without its sweeper thread.

    The library's ``MemoryStorage`` starts a thread every 10 ms that scans every key: with
    many identities (a flood from many addresses) that scan alone would keep a core busy.
    Every key here lives the same ``2 * window_s`` from its first hit, so the expiry table
    (a dict, in insertion order) is in expiry order: each hit drops at most a few expired
    keys from its front instead, O(1) per request. (Overrides a private hook of
    limits==5.8.0, pinned exactly.)"""
    from limits.storage import MemoryStorage

    class LeanMemoryStorage(MemoryStorage):
        def __init__(self) -> None:
            super().__init__()
            self.timer.cancel()  # the base class's first sweeper, before it runs

        def _MemoryStorage__schedule_expiry(self) -> None:  # called on every hit
            now = time.time()
            expirations = self.expirations
            for _ in range(_SWEEP):
                key = next(iter(expirations), None)
                if key is None or expirations[key] > now:
                    return
                self.storage.pop(key, None)
                expirations.pop(key, None)
                self.locks.pop(key, None)

    return LeanMemoryStorage()


#: expired keys dropped per hit (more than a hit can add: it adds at most one)
_SWEEP = 4


def _credential(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return "k" + hashlib.sha256(value).hexdigest()[:32]
    return None


def _headers(verdict: Verdict) -> list[tuple[bytes, bytes]]:
    return [
        (b"ratelimit-limit", str(verdict.limit).encode()),
        (b"ratelimit-remaining", str(verdict.remaining).encode()),
        (b"ratelimit-reset", str(verdict.reset_s).encode()),
    ]


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, budgets: Budgets) -> None:
        self.app = app
        self.budgets = budgets

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self.budgets.blocking:
            return await anyio.to_thread.run_sync(fn, *args)
        return fn(*args)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        budgets = self.budgets
        if (
            scope["type"] != "http"
            or scope["path"] in EXEMPT
            or (budgets.down_until and time.monotonic() < budgets.down_until)
        ):
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown",))[0]
        credential = _credential(scope)
        cost = route_cost(budgets.settings, scope["method"], scope["path"])
        try:
            verdict = await self._check(address, credential, cost)
        except Exception as exc:  # the store is down: serve, and say so in the log
            budgets.warn(exc)
            await self.app(scope, receive, send)
            return
        if not verdict.allowed:
            await self._refuse(scope, receive, send, verdict)
            return
        extra = _headers(verdict)
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_wrapper)
        if status == 401 and credential is not None and budgets.settings.cost_auth_failure:
            try:
                await self._run(
                    budgets.spend, budgets.failures, address, budgets.settings.cost_auth_failure
                )
            except Exception as exc:
                budgets.warn(exc)

    async def _check(self, address: str, credential: str | None, cost: int) -> Verdict:
        budgets = self.budgets
        if credential is None:
            verdict: Verdict = await self._run(budgets.spend, budgets.per_ip, address, cost)
            return verdict
        # a request with credentials is looked at only if its address could afford to fail
        locked: Verdict | None = await self._run(
            budgets.exhausted, budgets.failures, address, budgets.settings.cost_auth_failure
        )
        if locked is not None:
            return replace(
                locked,
                reason="too many failed authentications from this address",
                budget="auth_failures",
            )
        verdict = await self._run(budgets.spend, budgets.per_key, credential, cost)
        return replace(verdict, reason="this API key is over its request budget", budget="key")

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, verdict: Verdict) -> None:
        metrics.RATE_LIMITED.labels(verdict.budget).inc()
        window = self.budgets.settings.window_s
        error = RateLimited(
            f"{verdict.reason or 'this client address is over its request budget'} "
            f"({verdict.limit} units per {window} s); retry in {verdict.reset_s} s",
            retry_after=verdict.reset_s,
        )
        response = error_response(error, scope["method"], scope["path"])
        for name, value in _headers(verdict):
            response.headers[name.decode()] = value.decode()
        await response(scope, receive, send)
