"""The records of threads and messages, and the queries that count messages per thread
and per reader (shared by :mod:`.messages` and kept apart to keep it short)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._time import utc


@dataclass(frozen=True)
class ThreadRecord:
    id: str
    study_id: str
    title: str
    image_id: str | None
    region: dict[str, Any] | None
    created_by: str
    created_at: datetime
    last_message_at: datetime
    resolved_at: datetime | None
    #: live messages, and those unread by the user the thread was read for
    messages: int = 0
    unread: int = 0

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        for name in ("created_at", "last_message_at", "resolved_at"):
            body[name] = body[name] and body[name].isoformat()
        body["resolved"] = self.resolved_at is not None
        return body


@dataclass(frozen=True)
class MessageRecord:
    id: str
    thread_id: str
    study_id: str
    author_id: str
    body: str
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None
    edits: int = 0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("created_at", "edited_at", "deleted_at"):
            out[name] = out[name] and out[name].isoformat()
        out["deleted"] = self.deleted_at is not None
        if self.deleted_at is not None:
            out["body"] = ""  # the text stays in the event log, for the audit
        return out


@dataclass(frozen=True)
class EditRecord:
    edit: int
    body: str  # the text before this edit
    edited_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"edit": self.edit, "body": self.body, "edited_at": self.edited_at.isoformat()}


def unread_filter(user_id: str) -> list[sa.ColumnElement[bool]]:
    msg, rd = tw.messages, tw.thread_reads
    return [
        msg.c.author_id != user_id,
        msg.c.deleted_at.is_(None),
        sa.or_(rd.c.read_at.is_(None), msg.c.created_at > rd.c.read_at),
    ]


def with_counts(user_id: str, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """The threads matching ``where``, with their live message count and the count
    ``user_id`` has not read (counted per thread first: JSON columns cannot be grouped)."""
    th, msg, rd = tw.threads, tw.messages, tw.thread_reads
    counts = (
        sa.select(
            msg.c.thread_id,
            sa.func.count(sa.case((msg.c.deleted_at.is_(None), 1))).label("messages"),
            sa.func.count(sa.case((sa.and_(*unread_filter(user_id)), 1))).label("unread"),
        )
        .select_from(
            msg.outerjoin(rd, sa.and_(rd.c.thread_id == msg.c.thread_id, rd.c.user_id == user_id))
        )
        .where(msg.c.thread_id.in_(sa.select(th.c.id).where(*where)))
        .group_by(msg.c.thread_id)
        .subquery()
    )
    return (
        sa.select(
            th,
            sa.func.coalesce(counts.c.messages, 0).label("messages"),
            sa.func.coalesce(counts.c.unread, 0).label("unread"),
        )
        .select_from(th.outerjoin(counts, counts.c.thread_id == th.c.id))
        .where(*where)
    )


def thread_record(row: Any) -> ThreadRecord:
    data = dict(row._mapping)
    for name in ("created_at", "last_message_at", "resolved_at"):
        data[name] = utc(data[name])
    return ThreadRecord(**data)


MESSAGE_COLUMNS = (*tw.messages.c, tw.threads.c.study_id)


def message_record(row: Any) -> MessageRecord:
    data = dict(row._mapping)
    for name in ("created_at", "edited_at", "deleted_at"):
        data[name] = utc(data[name])
    data["edits"] = int(data.get("edits") or 0)
    return MessageRecord(**data)


def edit_count() -> sa.Label[Any]:
    ed = tw.message_edits
    return (
        sa.select(sa.func.count())
        .where(ed.c.message_id == tw.messages.c.id)
        .scalar_subquery()
        .label("edits")
    )
