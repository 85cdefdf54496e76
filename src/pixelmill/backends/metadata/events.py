"""The append-only event log: every change (who, what, when, before and after) and
every security event (login failures, permission denials, key changes, admin reads).

Writers append inside the transaction of the change they record (:func:`append`), so an
event exists exactly when its change committed. Nothing updates or deletes a row. An
event made while the gateway serves a request carries that request's id (the
``X-Request-ID`` it answered with), read from the logging context: no writer passes it.
The outcome is in the action: ``denied.*`` for a refusal, the action itself when done."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._time import now, utc
from pixelmill.backends.metadata.database import Database
from pixelmill.observability.context import current_request


@dataclass(frozen=True)
class EventRecord:
    id: int
    at: datetime
    actor_id: str | None
    key_id: str | None
    action: str
    target_type: str
    target_id: str | None
    study_id: str | None
    security: bool
    before: Any
    after: Any
    ip: str | None
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["at"] = self.at.isoformat()
        return body


@dataclass(frozen=True)
class Actor:
    """Who did it, as the log records it."""

    user_id: str | None = None
    key_id: str | None = None
    ip: str | None = None


def append(
    conn: Connection,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | None = None,
    *,
    study_id: str | None = None,
    before: Any = None,
    after: Any = None,
    security: bool = False,
) -> None:
    """Append one event on ``conn`` (inside the caller's transaction)."""
    request = current_request()
    conn.execute(
        tw.events.insert().values(
            at=now(),
            actor_id=actor.user_id or None,
            key_id=actor.key_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            study_id=study_id,
            security=security,
            before=before,
            after=after,
            ip=actor.ip,
            request_id=request.request_id if request is not None else None,
        )
    )
    if study_id is not None:
        conn.execute(
            tw.studies.update().where(tw.studies.c.id == study_id).values(last_activity_at=now())
        )


def _event(row: Any) -> EventRecord:
    data = dict(row._mapping)
    data["at"] = utc(data["at"])
    data["security"] = bool(data["security"])
    return EventRecord(**data)


def _action_matches(column: Any, action: str) -> Any:
    if not action.endswith((".", "*")):
        return column == action
    prefix = action.rstrip("*")
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%", escape="\\")


class EventLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        actor: Actor,
        action: str,
        target_type: str,
        target_id: str | None = None,
        **fields: Any,
    ) -> None:
        """Append one event in a transaction of its own (security events, reads)."""
        with self.db.begin() as conn:
            append(conn, actor, action, target_type, target_id, **fields)

    def list(
        self,
        *,
        study_id: str | None = None,
        after_id: int | None = None,
        before_id: int | None = None,
        security: bool | None = None,
        since: datetime | None = None,
        actor_id: str | None = None,
        action: str | None = None,
        request_id: str | None = None,
        limit: int = 100,
        newest_first: bool = True,
    ) -> list[EventRecord]:
        """Events matching every filter given; ``action`` matches exactly, or as a prefix
        when it ends with ``.`` or ``*`` (``login.``: every login event)."""
        c = tw.events.c
        query = sa.select(tw.events)
        if study_id is not None:
            query = query.where(c.study_id == study_id)
        if actor_id is not None:
            query = query.where(c.actor_id == actor_id)
        if action is not None:
            query = query.where(_action_matches(c.action, action))
        if request_id is not None:
            query = query.where(c.request_id == request_id)
        if after_id is not None:
            query = query.where(c.id > after_id)
        if before_id is not None:
            query = query.where(c.id < before_id)
        if security is not None:
            query = query.where(c.security.is_(security))
        if since is not None:
            query = query.where(c.at >= since)
        query = query.order_by(c.id.desc() if newest_first else c.id).limit(limit)
        with self.db.read() as conn:
            return [_event(r) for r in conn.execute(query).all()]

    def stream_all(self, *, batch: int = 1000, **filters: Any) -> Iterator[EventRecord]:
        """Every event (matching ``filters``: those of :meth:`list`), oldest first, read
        in batches (for exports)."""
        last = 0
        while True:
            page = self.list(after_id=last, limit=batch, newest_first=False, **filters)
            yield from page
            if len(page) < batch:
                return
            last = page[-1].id

    def last_id(self) -> int:
        with self.db.read() as conn:
            value = conn.execute(sa.select(sa.func.max(tw.events.c.id))).scalar_one_or_none()
        return int(value or 0)
