"""Discussion threads of a study, optionally pinned to an image and a region of it;
their messages (edits keep the old text, deletes are soft); and who read what.

A message is unread for a user when someone else wrote it, it is not deleted, and it
came after the user last marked its thread read. :meth:`StudyRepository.counts` counts
the same way. Every change appends its event in the same transaction."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.backends.metadata import tables as t
from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._time import now, utc
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, append
from pixelmill.errors import Conflict, InvalidParameter, NotFound


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


def _unread_filter(user_id: str) -> list[sa.ColumnElement[bool]]:
    msg, rd = tw.messages, tw.thread_reads
    return [
        msg.c.author_id != user_id,
        msg.c.deleted_at.is_(None),
        sa.or_(rd.c.read_at.is_(None), msg.c.created_at > rd.c.read_at),
    ]


def _with_counts(user_id: str, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """The threads matching ``where``, with their live message count and the count
    ``user_id`` has not read (counted per thread first: JSON columns cannot be grouped)."""
    th, msg, rd = tw.threads, tw.messages, tw.thread_reads
    counts = (
        sa.select(
            msg.c.thread_id,
            sa.func.count(sa.case((msg.c.deleted_at.is_(None), 1))).label("messages"),
            sa.func.count(sa.case((sa.and_(*_unread_filter(user_id)), 1))).label("unread"),
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


def _thread(row: Any) -> ThreadRecord:
    data = dict(row._mapping)
    for name in ("created_at", "last_message_at", "resolved_at"):
        data[name] = utc(data[name])
    return ThreadRecord(**data)


_MESSAGE_COLUMNS = (*tw.messages.c, tw.threads.c.study_id)


def _message(row: Any) -> MessageRecord:
    data = dict(row._mapping)
    for name in ("created_at", "edited_at", "deleted_at"):
        data[name] = utc(data[name])
    data["edits"] = int(data.get("edits") or 0)
    return MessageRecord(**data)


def _edit_count() -> sa.ScalarSelect[Any]:
    ed = tw.message_edits
    return (
        sa.select(sa.func.count())
        .where(ed.c.message_id == tw.messages.c.id)
        .scalar_subquery()
        .label("edits")
    )


class MessageRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- threads ------------------------------------------------------------------------
    def create_thread(
        self,
        actor: Actor,
        study_id: str,
        *,
        title: str,
        body: str | None = None,
        image_id: str | None = None,
        region: dict[str, Any] | None = None,
    ) -> ThreadRecord:
        """A new thread (with its first message when ``body`` is given). The image must
        be one of the study's; the region is checked against its size."""
        from pixelmill.imaging.regions import check_region

        if region is not None and image_id is None:
            raise InvalidParameter("a region is pinned to an image: give image_id too")
        thread_id, at = secrets.token_hex(8), now()
        with self.db.begin() as conn:
            if image_id is not None:
                size = self._image_size(conn, study_id, image_id)
                if region is not None:
                    region = check_region(region, size)
            conn.execute(
                tw.threads.insert().values(
                    id=thread_id,
                    study_id=study_id,
                    title=title,
                    image_id=image_id,
                    region=region,
                    created_by=actor.user_id,
                    created_at=at,
                    last_message_at=at,
                )
            )
            after = {"title": title, "image_id": image_id, "region": region}
            append(
                conn, actor, "thread.create", "thread", thread_id, study_id=study_id, after=after
            )
            if body is not None:
                self._post(conn, actor, study_id, thread_id, body)
        return self.thread(thread_id, actor.user_id or "")

    @staticmethod
    def _image_size(conn: Connection, study_id: str, image_id: str) -> tuple[int, int] | None:
        si, im = tw.study_images, t.images
        row = conn.execute(
            sa.select(im.c.width, im.c.height)
            .join(si, si.c.image_id == im.c.id)
            .where(si.c.study_id == study_id, si.c.image_id == image_id)
        ).first()
        if row is None:
            raise InvalidParameter(f"image {image_id!r} is not in this study", parameter="image_id")
        return (int(row.width), int(row.height)) if row.width and row.height else None

    def thread(self, thread_id: str, user_id: str) -> ThreadRecord:
        """The thread, with counts for ``user_id``."""
        with self.db.read() as conn:
            row = conn.execute(_with_counts(user_id, tw.threads.c.id == thread_id)).first()
        if row is None:
            raise NotFound(f"no thread {thread_id!r}")
        return _thread(row)

    def threads(
        self,
        study_id: str,
        user_id: str,
        *,
        resolved: bool | None = None,
        image_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[ThreadRecord], int]:
        """A page of the study's threads, most recent message first, and the total."""
        th = tw.threads
        where = [th.c.study_id == study_id]
        if resolved is not None:
            where.append(th.c.resolved_at.is_not(None) if resolved else th.c.resolved_at.is_(None))
        if image_id is not None:
            where.append(th.c.image_id == image_id)
        page = (
            _with_counts(user_id, *where)
            .order_by(th.c.last_message_at.desc(), th.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.db.read() as conn:
            total = int(
                conn.execute(sa.select(sa.func.count()).select_from(th).where(*where)).scalar_one()
            )
            return [_thread(r) for r in conn.execute(page).all()], total

    def update_thread(
        self,
        actor: Actor,
        thread_id: str,
        *,
        title: str | None = None,
        resolved: bool | None = None,
    ) -> ThreadRecord:
        th = tw.threads
        with self.db.begin() as conn:
            row = conn.execute(sa.select(th).where(th.c.id == thread_id).with_for_update()).first()
            if row is None:
                raise NotFound(f"no thread {thread_id!r}")
            changes: dict[str, Any] = {}
            before: dict[str, Any] = {}
            after: dict[str, Any] = {}
            if title is not None and title != row.title:
                changes["title"], before["title"], after["title"] = title, row.title, title
            was_resolved = row.resolved_at is not None
            if resolved is not None and resolved != was_resolved:
                changes["resolved_at"] = now() if resolved else None
                before["resolved"], after["resolved"] = was_resolved, resolved
            if changes:
                conn.execute(th.update().where(th.c.id == thread_id).values(**changes))
                action = "thread.update"
                if set(after) == {"resolved"}:
                    action = "thread.resolve" if resolved else "thread.reopen"
                append(
                    conn,
                    actor,
                    action,
                    "thread",
                    thread_id,
                    study_id=row.study_id,
                    before=before,
                    after=after,
                )
        return self.thread(thread_id, actor.user_id or "")

    # -- messages -----------------------------------------------------------------------
    def post(self, actor: Actor, thread_id: str, body: str) -> MessageRecord:
        with self.db.begin() as conn:
            study_id = conn.execute(
                sa.select(tw.threads.c.study_id).where(tw.threads.c.id == thread_id)
            ).scalar_one_or_none()
            if study_id is None:
                raise NotFound(f"no thread {thread_id!r}")
            message_id = self._post(conn, actor, study_id, thread_id, body)
        return self.message(message_id)

    @staticmethod
    def _post(conn: Connection, actor: Actor, study_id: str, thread_id: str, body: str) -> str:
        message_id, at = secrets.token_hex(8), now()
        conn.execute(
            tw.messages.insert().values(
                id=message_id,
                thread_id=thread_id,
                author_id=actor.user_id,
                body=body,
                created_at=at,
            )
        )
        conn.execute(
            tw.threads.update().where(tw.threads.c.id == thread_id).values(last_message_at=at)
        )
        after = {"thread_id": thread_id, "body": body}
        append(conn, actor, "message.post", "message", message_id, study_id=study_id, after=after)
        return message_id

    def message(self, message_id: str) -> MessageRecord:
        msg, th = tw.messages, tw.threads
        query = (
            sa.select(*_MESSAGE_COLUMNS, _edit_count())
            .join(th, th.c.id == msg.c.thread_id)
            .where(msg.c.id == message_id)
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no message {message_id!r}")
        return _message(row)

    def messages(
        self, thread_id: str, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[MessageRecord], int]:
        """A page of the thread's messages, oldest first (deleted ones stay, marked, so
        replies keep their place), and the total."""
        msg, th = tw.messages, tw.threads
        page = (
            sa.select(*_MESSAGE_COLUMNS, _edit_count())
            .join(th, th.c.id == msg.c.thread_id)
            .where(msg.c.thread_id == thread_id)
            .order_by(msg.c.created_at, msg.c.id)
            .limit(limit)
            .offset(offset)
        )
        count = sa.select(sa.func.count()).select_from(msg).where(msg.c.thread_id == thread_id)
        with self.db.read() as conn:
            return [_message(r) for r in conn.execute(page).all()], int(
                conn.execute(count).scalar_one()
            )

    def edit(self, actor: Actor, message_id: str, body: str) -> MessageRecord:
        """Replace the text; the old text is kept as an edit."""
        msg, ed = tw.messages, tw.message_edits
        with self.db.begin() as conn:
            old = self._locked(conn, message_id)
            if old.deleted_at is not None:
                raise Conflict("a deleted message cannot be edited")
            if body != old.body:
                at = now()
                n = conn.execute(
                    sa.select(sa.func.count()).where(ed.c.message_id == message_id)
                ).scalar_one()
                conn.execute(
                    ed.insert().values(
                        message_id=message_id, edit=n + 1, body=old.body, edited_at=at
                    )
                )
                conn.execute(
                    msg.update().where(msg.c.id == message_id).values(body=body, edited_at=at)
                )
                append(
                    conn,
                    actor,
                    "message.edit",
                    "message",
                    message_id,
                    study_id=old.study_id,
                    before={"body": old.body},
                    after={"thread_id": old.thread_id, "body": body},
                )
        return self.message(message_id)

    def delete(self, actor: Actor, message_id: str) -> MessageRecord:
        """Soft delete: the message stays in its place as deleted; its text goes to the
        event log only."""
        msg = tw.messages
        with self.db.begin() as conn:
            old = self._locked(conn, message_id)
            if old.deleted_at is None:
                conn.execute(msg.update().where(msg.c.id == message_id).values(deleted_at=now()))
                append(
                    conn,
                    actor,
                    "message.delete",
                    "message",
                    message_id,
                    study_id=old.study_id,
                    before={"body": old.body},
                    after={"thread_id": old.thread_id},
                )
        return self.message(message_id)

    @staticmethod
    def _locked(conn: Connection, message_id: str) -> MessageRecord:
        msg, th = tw.messages, tw.threads
        row = conn.execute(
            sa.select(*_MESSAGE_COLUMNS)
            .join(th, th.c.id == msg.c.thread_id)
            .where(msg.c.id == message_id)
            .with_for_update(of=msg)
        ).first()
        if row is None:
            raise NotFound(f"no message {message_id!r}")
        return _message(row)

    def edits(self, message_id: str) -> list[EditRecord]:
        """The message's earlier texts, oldest first."""
        ed = tw.message_edits
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(ed.c.edit, ed.c.body, ed.c.edited_at)
                .where(ed.c.message_id == message_id)
                .order_by(ed.c.edit)
            ).all()
        return [EditRecord(r.edit, r.body, utc(r.edited_at)) for r in rows]

    # -- reading --------------------------------------------------------------------------
    def mark_read(self, user_id: str, thread_id: str) -> datetime:
        """``user_id`` has read the thread up to now (its newest message at least)."""
        rd = tw.thread_reads
        with self.db.begin() as conn:
            newest = conn.execute(
                sa.select(sa.func.max(tw.messages.c.created_at)).where(
                    tw.messages.c.thread_id == thread_id
                )
            ).scalar_one_or_none()
            # never behind the newest message, whatever the clocks of two writers say
            at = max(now(), utc(newest)) if newest is not None else now()
            values = {"thread_id": thread_id, "user_id": user_id, "read_at": at}
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as upsert
            else:
                from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
            stmt = upsert(rd).values(**values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[rd.c.thread_id, rd.c.user_id], set_={"read_at": at}
                )
            )
        return at

    def unread_by_study(self, user_id: str) -> dict[str, tuple[str, int]]:
        """Study id -> (its name, messages ``user_id`` has not read in it), for the
        studies they are a member of (active or locked; studies with none left out)."""
        th, msg, rd, m, s = tw.threads, tw.messages, tw.thread_reads, tw.study_members, tw.studies
        query = (
            sa.select(th.c.study_id, s.c.name, sa.func.count())
            .select_from(
                th.join(m, sa.and_(m.c.study_id == th.c.study_id, m.c.user_id == user_id))
                .join(s, s.c.id == th.c.study_id)
                .join(msg, msg.c.thread_id == th.c.id)
                .outerjoin(rd, sa.and_(rd.c.thread_id == th.c.id, rd.c.user_id == user_id))
            )
            .where(s.c.status.in_(("active", "locked")), *_unread_filter(user_id))
            .group_by(th.c.study_id, s.c.name)
        )
        with self.db.read() as conn:
            return {sid: (name, int(n)) for sid, name, n in conn.execute(query).all()}
