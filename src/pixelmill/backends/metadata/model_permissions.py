"""Per-model permissions (``model_permissions``: model, user, level read|edit|manage).

Grants and revocations are written with their audit entry (``ml_model_audit``) and an
event (``events``) in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.backends.metadata import tables_ml as t
from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._time import now, utc
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, append
from pixelmill.errors import Conflict, NotFound


@dataclass(frozen=True)
class PermissionRecord:
    model: str
    user_id: str
    level: str
    granted_at: datetime
    granted_by: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "user_id": self.user_id,
            "level": self.level,
            "granted_at": self.granted_at.isoformat(),
            "granted_by": self.granted_by,
        }


def _record(row: Any) -> PermissionRecord:
    data = dict(row._mapping)
    data["granted_at"] = utc(data["granted_at"])
    return PermissionRecord(**data)


def grant_on(conn: Connection, model: str, user_id: str, level: str, by: str | None) -> None:
    """Insert or replace ``user_id``'s level on ``model`` on ``conn`` (caller's transaction)."""
    p = tw.model_permissions
    where = (p.c.model == model, p.c.user_id == user_id)
    values = {"level": level, "granted_at": now(), "granted_by": by or None}
    if conn.execute(sa.select(p.c.level).where(*where)).first() is None:
        conn.execute(p.insert().values(model=model, user_id=user_id, **values))
    else:
        conn.execute(p.update().where(*where).values(**values))


class ModelPermissionRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: grants and revocations written through this object (caches of decisions
        #: drop what they remember when it moves: services/inference/grants.py)
        self.changes = 0

    def level(self, model: str, user_id: str) -> str | None:
        if not user_id:
            return None
        p = tw.model_permissions
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(p.c.level).where(p.c.model == model, p.c.user_id == user_id)
            ).first()
        return None if row is None else str(row.level)

    def levels(self, user_id: str) -> dict[str, str]:
        """``{model: level}`` of every grant ``user_id`` holds."""
        if not user_id:
            return {}
        p = tw.model_permissions
        with self.db.read() as conn:
            rows = conn.execute(sa.select(p.c.model, p.c.level).where(p.c.user_id == user_id))
            return {str(r.model): str(r.level) for r in rows}

    def list(self, model: str) -> list[PermissionRecord]:
        p = tw.model_permissions
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(p).where(p.c.model == model).order_by(p.c.granted_at, p.c.user_id)
            ).all()
        return [_record(r) for r in rows]

    def set(
        self, model: str, user_id: str, level: str, *, actor: Actor, keep_manager: bool = True
    ) -> PermissionRecord:
        """Grant ``level``; ``keep_manager``: 409 rather than demote the last manager."""
        with self.db.begin() as conn:
            before = conn.execute(
                sa.select(tw.model_permissions.c.level).where(
                    tw.model_permissions.c.model == model,
                    tw.model_permissions.c.user_id == user_id,
                )
            ).scalar_one_or_none()
            if keep_manager and before == "manage" and level != "manage":
                self._keep_a_manager(conn, model, user_id)
            grant_on(conn, model, user_id, level, actor.user_id)
            self._audit(conn, model, "grant", f"{user_id}={level}", actor)
            append(
                conn,
                actor,
                "model.grant",
                "model",
                model,
                before=None if before is None else {"user_id": user_id, "level": before},
                after={"user_id": user_id, "level": level},
            )
        self.changes += 1
        return next(r for r in self.list(model) if r.user_id == user_id)

    def delete(self, model: str, user_id: str, *, actor: Actor, keep_manager: bool = True) -> None:
        """Revoke; ``keep_manager``: 409 rather than remove the last manager."""
        p = tw.model_permissions
        where = (p.c.model == model, p.c.user_id == user_id)
        with self.db.begin() as conn:
            before = conn.execute(sa.select(p.c.level).where(*where)).scalar_one_or_none()
            if before is None:
                raise NotFound(f"user {user_id!r} has no permission on model {model!r}")
            if keep_manager and before == "manage":
                self._keep_a_manager(conn, model, user_id)
            conn.execute(p.delete().where(*where))
            self._audit(conn, model, "revoke", f"{user_id} (was {before})", actor)
            append(
                conn,
                actor,
                "model.revoke",
                "model",
                model,
                before={"user_id": user_id, "level": before},
            )
        self.changes += 1

    @staticmethod
    def _keep_a_manager(conn: Connection, model: str, leaving: str) -> None:
        """409 when ``leaving`` is the model's last manager (it would be left to admins)."""
        p = tw.model_permissions
        others = conn.execute(
            sa.select(p.c.user_id)
            .where(p.c.model == model, p.c.level == "manage", p.c.user_id != leaving)
            .limit(1)
        ).first()
        if others is None:
            raise Conflict(
                f"model {model!r} keeps at least one manager: grant manage to another user first"
            )

    @staticmethod
    def _audit(conn: Connection, model: str, action: str, note: str, actor: Actor) -> None:
        conn.execute(
            t.model_audit.insert().values(
                model=model, action=action, actor=actor.user_id, note=note, at=now()
            )
        )
