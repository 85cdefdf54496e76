"""Discussion threads of a study, optionally pinned to an image and a region of it;
their messages (edits keep the old text, deletes are soft); and who read what.

A message is unread for a user when someone else wrote it, it is not deleted, and it
came after the user last marked its thread read. :meth:`StudyRepository.counts` counts
the same way. Every change appends its event in the same transaction."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.backends.metadata import tables as t
from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._time import now, utc
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, append
from pixelmill.backends.metadata.message_records import (
    MESSAGE_COLUMNS,
    EditRecord,
    MessageRecord,
    ThreadRecord,
    edit_count,
    message_record,
    thread_record,
    unread_filter,
    with_counts,
)
from pixelmill.errors import Conflict, InvalidParameter, NotFound


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
            row = conn.execute(with_counts(user_id, tw.threads.c.id == thread_id)).first()
        if row is None:
            raise NotFound(f"no thread {thread_id!r}")
        return thread_record(row)

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
            with_counts(user_id, *where)
            .order_by(th.c.last_message_at.desc(), th.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.db.read() as conn:
            total = int(
                conn.execute(sa.select(sa.func.count()).select_from(th).where(*where)).scalar_one()
            )
            return [thread_record(r) for r in conn.execute(page).all()], total

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
            sa.select(*MESSAGE_COLUMNS, edit_count())
            .join(th, th.c.id == msg.c.thread_id)
            .where(msg.c.id == message_id)
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no message {message_id!r}")
        return message_record(row)

    def messages(
        self, thread_id: str, *, limit: int = 100, offset: int = 0
    ) -> tuple[list[MessageRecord], int]:
        """A page of the thread's messages, oldest first (deleted ones stay, marked, so
        replies keep their place), and the total."""
        msg, th = tw.messages, tw.threads
        page = (
            sa.select(*MESSAGE_COLUMNS, edit_count())
            .join(th, th.c.id == msg.c.thread_id)
            .where(msg.c.thread_id == thread_id)
            .order_by(msg.c.created_at, msg.c.id)
            .limit(limit)
            .offset(offset)
        )
        count = sa.select(sa.func.count()).select_from(msg).where(msg.c.thread_id == thread_id)
        with self.db.read() as conn:
            return [message_record(r) for r in conn.execute(page).all()], int(
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
            sa.select(*MESSAGE_COLUMNS)
            .join(th, th.c.id == msg.c.thread_id)
            .where(msg.c.id == message_id)
            .with_for_update(of=msg)
        ).first()
        if row is None:
            raise NotFound(f"no message {message_id!r}")
        return message_record(row)

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
            .where(s.c.status.in_(("active", "locked")), *unread_filter(user_id))
            .group_by(th.c.study_id, s.c.name)
        )
        with self.db.read() as conn:
            return {sid: (name, int(n)) for sid, name, n in conn.execute(query).all()}
