"""GET /v1/audit: the whole event log as a download (admins only), JSON Lines or CSV.

Streamed oldest first, read from the database in batches, so an export of millions of
events holds one batch in memory. Every export is itself logged (``audit.export``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from pixelmill.backends.metadata.events import EventLog, EventRecord
from pixelmill.backends.metadata.users import UserRepository
from pixelmill.errors import Forbidden
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.bounds import INT64_MAX
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.access import actor_of
from pixelmill.services.workspace.principal import Principal

router = APIRouter(tags=["accounts"])
BATCH = 1000
COLUMNS = (
    "id",
    "at",
    "action",
    "target_type",
    "target_id",
    "study_id",
    "security",
    "actor_id",
    "actor_username",
    "key_id",
    "ip",
    "request_id",
    "before",
    "after",
)
_MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def _rows(
    events: EventLog, users: UserRepository, filters: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    batch: list[EventRecord] = []

    def flush() -> Iterator[dict[str, Any]]:
        names = {
            u.id: u.username
            for u in users.many(list({e.actor_id for e in batch if e.actor_id})).values()
        }
        for e in batch:
            row = e.to_json()
            row["actor_username"] = names.get(e.actor_id or "")
            yield row
        batch.clear()

    for event in events.stream_all(batch=BATCH, **filters):
        batch.append(event)
        if len(batch) == BATCH:
            yield from flush()
    yield from flush()


def _jsonl(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for row in rows:
        yield orjson.dumps({k: row[k] for k in COLUMNS}) + b"\n"


def _csv(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(COLUMNS)
    for n, row in enumerate(rows, 1):
        cells = []
        for k in COLUMNS:
            value = row[k]
            if k in ("before", "after"):
                value = "" if value is None else orjson.dumps(value).decode()
            cells.append("" if value is None else value)
        out.writerow(cells)
        if n % 200 == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


@router.get(
    "/v1/audit",
    summary="Export the event log (admins): every change and security event",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
def export_audit(
    request: Request,
    format: Literal["jsonl", "csv"] = Query("jsonl", description="jsonl (default) or csv"),
    security: bool | None = Query(None, description="Only security events (true) or others."),
    since: datetime | None = Query(None, description="Only events at or after this instant."),
    study_id: str | None = Query(None, max_length=32, description="Only this study's events."),
    principal: Principal = Depends(require("admin")),
) -> StreamingResponse:
    if not principal.is_admin:
        raise Forbidden("the audit log is for site admins")
    c = deps(request)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    filters: dict[str, Any] = {"security": security, "study_id": study_id}
    asked: dict[str, Any] = {
        "format": format,
        **{k: v for k, v in filters.items() if v is not None},
    }
    if since is not None:
        filters["since"] = since.astimezone(UTC)
        asked["since"] = filters["since"].isoformat()
    c.events.record(
        actor_of(principal, request.client.host if request.client else None),
        "audit.export",
        "audit",
        None,
        after=asked,
        security=True,
    )
    rows = _rows(c.events, c.users, filters)
    body = _jsonl(rows) if format == "jsonl" else _csv(rows)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        body,
        media_type=_MEDIA[format],
        headers={
            "Content-Disposition": f'attachment; filename="pixelmill-audit-{stamp}.{format}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/v1/audit/events",
    summary="A page of the event log (admins), newest first: security events only, by "
    "actor, by action",
)
def audit_page(
    request: Request,
    limit: int = Query(50, ge=1, le=200),
    before_id: int | None = Query(
        None, ge=1, le=INT64_MAX, description="The next page: events older than this id."
    ),
    security: bool | None = Query(None, description="Only security events (true) or others."),
    actor: str | None = Query(None, max_length=64, description="Only this username's events."),
    action: str | None = Query(
        None, max_length=100, description="This action, or a prefix ending in '.' or '*'."
    ),
    request_id: str | None = Query(
        None, max_length=128, description="Only the events of this request (its X-Request-ID)."
    ),
    principal: Principal = Depends(require("admin")),
) -> dict[str, Any]:
    if not principal.is_admin:
        raise Forbidden("the audit log is for site admins")
    c = deps(request)
    filters: dict[str, Any] = {
        "security": security,
        "action": action or None,
        "request_id": request_id or None,
    }
    if actor:
        user = c.users.find(actor)
        if user is None:  # nobody by that name did anything
            return {"items": [], "next_before_id": None}
        filters["actor_id"] = user.id
    page = c.events.list(before_id=before_id, limit=limit, **filters)
    names = {
        u.id: u.username for u in c.users.many([e.actor_id for e in page if e.actor_id]).values()
    }
    items = [{**e.to_json(), "actor_username": names.get(e.actor_id or "")} for e in page]
    if before_id is None:  # opening the log (not paging on) is itself logged
        asked = {k: v for k, v in {**filters, "actor": actor}.items() if v is not None}
        asked.pop("actor_id", None)
        ip = request.client.host if request.client else None
        c.events.record(
            actor_of(principal, ip), "audit.read", "audit", None, after=asked, security=True
        )
    return {"items": items, "next_before_id": page[-1].id if len(page) == limit else None}
