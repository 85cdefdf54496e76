"""Studies, their members and their images (links to images, with study-level
attributes). Every change appends its event in the same transaction."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._paging import contains_text
from pixelmill.backends.metadata._time import now, utc
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, append
from pixelmill.errors import Conflict, NotFound


@dataclass(frozen=True)
class StudyRecord:
    id: str
    name: str
    description: str
    modality: str
    status: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    options: dict[str, Any]
    patient_seq: int

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        for name in ("created_at", "updated_at", "last_activity_at"):
            body[name] = body[name].isoformat()
        body.pop("patient_seq")
        return body


@dataclass(frozen=True)
class StudyImageRecord:
    study_id: str
    image_id: str
    display_name: str
    stain: str | None
    magnification: float | None
    pixel_size_um: float | None
    patient_id: str | None
    analysis_status: str
    added_by: str
    added_at: datetime


def with_utc(data: dict[str, Any], *names: str) -> dict[str, Any]:
    for name in names:
        data[name] = utc(data[name])
    return data


def study_record(row: Any) -> StudyRecord:
    return StudyRecord(
        **with_utc(dict(row._mapping), "created_at", "updated_at", "last_activity_at")
    )


def study_image_record(row: Any) -> StudyImageRecord:
    return StudyImageRecord(**with_utc(dict(row._mapping), "added_at"))


_FIELDS = ("name", "description", "modality", "options")


class StudyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- studies --------------------------------------------------------------------------
    def create(
        self, actor: Actor, *, name: str, description: str, modality: str, options: dict[str, Any]
    ) -> StudyRecord:
        study_id = secrets.token_hex(8)
        at = now()
        values = {
            "name": name,
            "description": description,
            "modality": modality,
            "options": options,
        }
        with self.db.begin() as conn:
            conn.execute(
                tw.studies.insert().values(
                    id=study_id,
                    status="active",
                    created_by=actor.user_id,
                    created_at=at,
                    updated_at=at,
                    last_activity_at=at,
                    patient_seq=0,
                    **values,
                )
            )
            conn.execute(
                tw.study_members.insert().values(
                    study_id=study_id,
                    user_id=actor.user_id,
                    role="owner",
                    added_at=at,
                    added_by=actor.user_id,
                )
            )
            append(conn, actor, "study.create", "study", study_id, study_id=study_id, after=values)
        return self.get(study_id)

    def get(self, study_id: str, conn: Connection | None = None) -> StudyRecord:
        query = sa.select(tw.studies).where(tw.studies.c.id == study_id)
        if conn is not None:
            row = conn.execute(query).first()
        else:
            with self.db.read() as c:
                row = c.execute(query).first()
        if row is None:
            raise NotFound(f"no study {study_id!r}")
        return study_record(row)

    def role_of(self, study_id: str, user_id: str) -> tuple[StudyRecord, str | None]:
        """The study and the user's role in it (``None``: not a member), one query."""
        m = tw.study_members
        query = (
            sa.select(tw.studies, m.c.role.label("member_role"))
            .select_from(
                tw.studies.outerjoin(
                    m, sa.and_(m.c.study_id == tw.studies.c.id, m.c.user_id == user_id)
                )
            )
            .where(tw.studies.c.id == study_id)
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no study {study_id!r}")
        data = dict(row._mapping)
        role = data.pop("member_role")
        return StudyRecord(**with_utc(data, "created_at", "updated_at", "last_activity_at")), role

    def update(self, actor: Actor, study_id: str, **changes: Any) -> StudyRecord:
        with self.db.begin() as conn:
            before = self.get(study_id, conn)
            old = {k: getattr(before, k) for k in changes}
            conn.execute(
                tw.studies.update()
                .where(tw.studies.c.id == study_id)
                .values(updated_at=now(), **changes)
            )
            append(
                conn,
                actor,
                "study.update",
                "study",
                study_id,
                study_id=study_id,
                before=old,
                after=changes,
            )
        return self.get(study_id)

    def delete(self, actor: Actor, study_id: str) -> StudyRecord:
        """Delete the study and everything in it. Images stay (they belong to their
        owners, and other studies may use them)."""
        with self.db.begin() as conn:
            before = self.get(study_id, conn)
            conn.execute(tw.studies.delete().where(tw.studies.c.id == study_id))
            append(conn, actor, "study.delete", "study", study_id, before={"name": before.name})
        return before

    def search(
        self,
        *,
        user_id: str | None,
        q: str | None = None,
        statuses: tuple[str, ...] = ("active", "locked"),
        modality: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[tuple[StudyRecord, str | None]], int]:
        """Studies ``user_id`` is a member of (``None``: every study, for admins), most
        recently active first, with the user's role; and the total count."""
        s, m = tw.studies, tw.study_members
        if user_id is None:
            base = sa.select(s, sa.literal(None).label("member_role"))
        else:
            base = sa.select(s, m.c.role.label("member_role")).join(
                m, sa.and_(m.c.study_id == s.c.id, m.c.user_id == user_id)
            )
        base = base.where(s.c.status.in_(statuses))
        if modality:
            base = base.where(s.c.modality == modality)
        if q:
            base = base.where(
                sa.or_(*(contains_text(col, q) for col in (s.c.name, s.c.description)))
            )
        count = sa.select(sa.func.count()).select_from(base.subquery())
        page = base.order_by(s.c.last_activity_at.desc(), s.c.id).limit(limit).offset(offset)
        with self.db.read() as conn:
            total = int(conn.execute(count).scalar_one())
            rows = conn.execute(page).all()
        out = []
        for row in rows:
            data = dict(row._mapping)
            role = data.pop("member_role")
            out.append(
                (
                    StudyRecord(**with_utc(data, "created_at", "updated_at", "last_activity_at")),
                    role,
                )
            )
        return out, total

    def counts(self, study_ids: list[str], user_id: str) -> dict[str, dict[str, int]]:
        """Per study: patients, images, analyses, open threads and messages unread by
        ``user_id``."""
        if not study_ids:
            return {}
        out = {
            sid: {
                "patients": 0,
                "images": 0,
                "analyses": 0,
                "open_threads": 0,
                "unread_messages": 0,
            }
            for sid in study_ids
        }
        simple = (("patients", tw.patients), ("images", tw.study_images), ("analyses", tw.analyses))
        th, msg, rd = tw.threads, tw.messages, tw.thread_reads
        with self.db.read() as conn:
            for name, table in simple:
                rows = conn.execute(
                    sa.select(table.c.study_id, sa.func.count())
                    .where(table.c.study_id.in_(study_ids))
                    .group_by(table.c.study_id)
                ).all()
                for sid, n in rows:
                    out[sid][name] = int(n)
            for sid, n in conn.execute(
                sa.select(th.c.study_id, sa.func.count())
                .where(th.c.study_id.in_(study_ids), th.c.resolved_at.is_(None))
                .group_by(th.c.study_id)
            ).all():
                out[sid]["open_threads"] = int(n)
            read_at = rd.c.read_at
            unread = (
                sa.select(th.c.study_id, sa.func.count())
                .select_from(
                    th.join(msg, msg.c.thread_id == th.c.id).outerjoin(
                        rd, sa.and_(rd.c.thread_id == th.c.id, rd.c.user_id == user_id)
                    )
                )
                .where(
                    th.c.study_id.in_(study_ids),
                    msg.c.author_id != user_id,
                    msg.c.deleted_at.is_(None),
                    sa.or_(read_at.is_(None), msg.c.created_at > read_at),
                )
                .group_by(th.c.study_id)
            )
            for sid, n in conn.execute(unread).all():
                out[sid]["unread_messages"] = int(n)
        return out

    # -- members ------------------------------------------------------------------------
    def members(self, study_id: str) -> list[dict[str, Any]]:
        m, u = tw.study_members, tw.users
        query = (
            sa.select(m.c.user_id, m.c.role, m.c.added_at, u.c.username, u.c.display_name)
            .join(u, u.c.id == m.c.user_id)
            .where(m.c.study_id == study_id)
            .order_by(u.c.username)
        )
        with self.db.read() as conn:
            return [
                {
                    "user_id": r.user_id,
                    "username": r.username,
                    "display_name": r.display_name,
                    "role": r.role,
                    "added_at": utc(r.added_at).isoformat(),
                }
                for r in conn.execute(query).all()
            ]

    def set_member(self, actor: Actor, study_id: str, user_id: str, role: str) -> None:
        m = tw.study_members
        with self.db.begin() as conn:
            old = conn.execute(
                sa.select(m.c.role).where(m.c.study_id == study_id, m.c.user_id == user_id)
            ).scalar_one_or_none()
            if old is None:
                conn.execute(
                    m.insert().values(
                        study_id=study_id,
                        user_id=user_id,
                        role=role,
                        added_at=now(),
                        added_by=actor.user_id,
                    )
                )
            else:
                conn.execute(
                    m.update()
                    .where(m.c.study_id == study_id, m.c.user_id == user_id)
                    .values(role=role)
                )
            self._keep_an_owner(conn, study_id)
            append(
                conn,
                actor,
                "member.set",
                "user",
                user_id,
                study_id=study_id,
                before=old and {"role": old},
                after={"role": role},
                security=True,
            )

    def remove_member(self, actor: Actor, study_id: str, user_id: str) -> None:
        m = tw.study_members
        with self.db.begin() as conn:
            done = conn.execute(m.delete().where(m.c.study_id == study_id, m.c.user_id == user_id))
            if not done.rowcount:
                raise NotFound(f"{user_id!r} is not a member of this study")
            self._keep_an_owner(conn, study_id)
            append(conn, actor, "member.remove", "user", user_id, study_id=study_id, security=True)

    @staticmethod
    def _keep_an_owner(conn: Connection, study_id: str) -> None:
        m = tw.study_members
        owners = conn.execute(
            sa.select(sa.func.count()).where(m.c.study_id == study_id, m.c.role == "owner")
        ).scalar_one()
        if not owners:
            raise Conflict("a study keeps at least one owner")
