"""GET /v1/studies/{id}/events/stream: a study's activity, live, as Server-Sent Events.

Each event of the study's log (new messages, annotations, analysis progress, members)
is one SSE message: ``id:`` is the event id (so ``Last-Event-ID`` resumes after a
reconnect) and ``data:`` is the event as the activity feed shows it to members
(:func:`~pixelmill.services.workspace.activity.member_event`: no ``before``/``after``
of security events, no key id; denials and admins' reads are not sent). The stream opens with an ``event: ready``
and sends a comment line when quiet; it polls the events table (every
``workspace.stream_poll_s``) and re-checks the reader's credential and membership
(every ``workspace.stream_recheck_s``): a removed member's or logged-out session's
stream ends with ``event: end``. A GET, it works with the browser session cookie and
needs no CSRF token.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from pixelmill.errors import NotFound
from pixelmill.services.gateway.auth import SESSION_COOKIE, key_cache, require
from pixelmill.services.gateway.bounds import INT64_MAX, event_cursor
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.activity import member_event
from pixelmill.services.workspace.principal import Principal

router = APIRouter(tags=["studies"])
BATCH = 200
#: the browser's EventSource reconnects after this many milliseconds
RETRY_MS = 3000


def _frame(data: dict[str, Any], *, event_id: int | None = None, kind: str | None = None) -> bytes:
    head = ""
    if event_id is not None:
        head += f"id: {event_id}\n"
    if kind is not None:
        head += f"event: {kind}\n"
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


def _still_allowed(request: Request, principal: Principal, study_id: str) -> bool:
    """The reader's credential still works and they may still read the study. Blocking."""
    c = deps(request)
    if principal.via == "local":
        return True
    cache = key_cache(request.app.state)
    if principal.via == "session":
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if cache.session(cookie) is None:
            return False
    else:
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        if cache.authenticate(token) is None:
            return False
    try:
        _study, role = c.studies.role_of(study_id, principal.user_id)
    except NotFound:  # the study was deleted
        return False
    return role is not None or principal.is_admin


def _batch(request: Request, study_id: str, cursor: int) -> list[tuple[int, dict[str, Any] | None]]:
    """The next events after ``cursor``, as (id, what the stream shows). Blocking."""
    c = deps(request)
    events = c.events.list(study_id=study_id, after_id=cursor, limit=BATCH, newest_first=False)
    users = c.users.many(sorted({e.actor_id for e in events if e.actor_id}))
    actors = {uid: user.public() for uid, user in users.items()}
    return [(e.id, member_event(e, actors)) for e in events]


@router.get(
    "/v1/studies/{study_id}/events/stream",
    summary="Server-Sent Events: the study's activity, live (resumes with Last-Event-ID)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def study_stream(
    request: Request,
    study_id: str,
    last_event_id: str | None = Header(None),
    after: int | None = Query(
        None,
        ge=0,
        le=INT64_MAX,
        description="Replay the study's events after this id (as Last-Event-ID).",
    ),
    principal: Principal = Depends(require("read")),
) -> StreamingResponse:
    c = deps(request)
    _study, role = await anyio.to_thread.run_sync(
        partial(c.access.study, principal, study_id, "study.read")
    )
    cursor = event_cursor(last_event_id, -1)
    if cursor < 0 and after is not None:
        cursor = after
    elif cursor < 0:  # only what happens from now on
        cursor = await anyio.to_thread.run_sync(c.events.last_id)
    ws = c.settings.workspace

    async def stream() -> AsyncIterator[bytes]:
        nonlocal cursor
        yield f"retry: {RETRY_MS}\n".encode() + _frame(
            {"study_id": study_id, "role": role, "after": cursor}, event_id=cursor, kind="ready"
        )
        started = sent = checked = time.monotonic()
        while not await request.is_disconnected():
            if time.monotonic() - started >= ws.stream_max_s:
                yield _frame({"reason": "reconnect"}, kind="end")
                return
            batch = await anyio.to_thread.run_sync(_batch, request, study_id, cursor)
            for event_id, shown in batch:
                cursor = event_id
                if shown is not None:
                    yield _frame(shown, event_id=event_id)
                    sent = time.monotonic()
            if time.monotonic() - checked >= ws.stream_recheck_s:
                if not await anyio.to_thread.run_sync(_still_allowed, request, principal, study_id):
                    yield _frame({"reason": "access"}, kind="end")
                    return
                # running analyses' progress becomes events while someone watches
                await anyio.to_thread.run_sync(c.analyses.refresh_running, study_id)
                checked = time.monotonic()
            if time.monotonic() - sent >= ws.stream_keepalive_s:
                yield b": keepalive\n\n"
                sent = time.monotonic()
            if len(batch) < BATCH:
                await anyio.sleep(ws.stream_poll_s)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
