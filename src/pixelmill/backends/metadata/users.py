"""Users and their browser sessions. Passwords arrive here already hashed (argon2, by
:mod:`pixelmill.services.workspace.accounts`); a session is stored as the SHA-256 of its
cookie secret, never the secret."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._time import now, utc
from pixelmill.backends.metadata.database import Database
from pixelmill.errors import Conflict, NotFound

SiteRole = Literal["admin", "member"]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class UserRecord:
    id: str
    username: str
    display_name: str
    site_role: SiteRole
    created_at: datetime
    disabled_at: datetime | None
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None
    has_password: bool

    @property
    def is_admin(self) -> bool:
        return self.site_role == "admin"

    def public(self) -> dict[str, Any]:
        """What any member may see of a user."""
        return {"id": self.id, "username": self.username, "display_name": self.display_name}


@dataclass(frozen=True)
class SessionRecord:
    id: str
    user_id: str
    csrf_hash: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime


def _user(row: Any) -> UserRecord:
    data = dict(row._mapping)
    data["has_password"] = data.pop("password_hash") is not None
    for name in ("created_at", "disabled_at", "locked_until", "last_login_at"):
        data[name] = utc(data[name])
    return UserRecord(**data)


def _session(row: Any) -> SessionRecord:
    data = dict(row._mapping)
    for name in ("created_at", "expires_at", "last_seen_at"):
        data[name] = utc(data[name])
    return SessionRecord(**data)


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: bumped after every change of what a user may do (role, disabled, password) in
        #: this process: caches of authentications drop theirs
        self.revision = 0

    def _changed(self, user: UserRecord) -> UserRecord:
        self.revision += 1
        return user

    # -- users --------------------------------------------------------------------------
    def create(
        self,
        username: str,
        *,
        site_role: SiteRole = "member",
        display_name: str = "",
        password_hash: str | None = None,
    ) -> UserRecord:
        user_id = secrets.token_hex(8)
        try:
            with self.db.begin() as conn:
                conn.execute(
                    tw.users.insert().values(
                        id=user_id,
                        username=username,
                        display_name=display_name or username,
                        password_hash=password_hash,
                        site_role=site_role,
                        created_at=now(),
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"the username {username!r} is taken") from exc
        return self.get(user_id)

    def get(self, user_id: str) -> UserRecord:
        with self.db.read() as conn:
            row = conn.execute(sa.select(tw.users).where(tw.users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"no user {user_id!r}")
        return _user(row)

    def find(self, username: str) -> UserRecord | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(tw.users).where(tw.users.c.username == username)).first()
        return None if row is None else _user(row)

    def by_username(self, username: str) -> UserRecord:
        found = self.find(username)
        if found is None:
            raise NotFound(f"no user {username!r}")
        return found

    def many(self, user_ids: list[str]) -> dict[str, UserRecord]:
        if not user_ids:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(sa.select(tw.users).where(tw.users.c.id.in_(set(user_ids)))).all()
        return {r.id: _user(r) for r in rows}

    def list(self, *, limit: int = 100, after: str | None = None) -> list[UserRecord]:
        query = sa.select(tw.users).order_by(tw.users.c.username).limit(limit)
        if after is not None:
            query = query.where(tw.users.c.username > after)
        with self.db.read() as conn:
            return [_user(r) for r in conn.execute(query).all()]

    def password_hash(self, user_id: str) -> str | None:
        with self.db.read() as conn:
            value = conn.execute(
                sa.select(tw.users.c.password_hash).where(tw.users.c.id == user_id)
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def _update(self, user_id: str, **values: Any) -> UserRecord:
        with self.db.begin() as conn:
            done = conn.execute(tw.users.update().where(tw.users.c.id == user_id).values(**values))
        if done.rowcount == 0:
            raise NotFound(f"no user {user_id!r}")
        return self.get(user_id)

    def set_password(self, user_id: str, password_hash: str) -> UserRecord:
        """A new password also ends every session of the user and any lockout."""
        name = sa.select(tw.users.c.username).where(tw.users.c.id == user_id).scalar_subquery()
        with self.db.begin() as conn:
            conn.execute(tw.sessions.delete().where(tw.sessions.c.user_id == user_id))
            conn.execute(tw.login_failures.delete().where(tw.login_failures.c.name == name))
        return self._changed(
            self._update(user_id, password_hash=password_hash, failed_logins=0, locked_until=None)
        )

    def set_disabled(self, user_id: str, disabled: bool) -> UserRecord:
        if disabled:
            with self.db.begin() as conn:
                conn.execute(tw.sessions.delete().where(tw.sessions.c.user_id == user_id))
        return self._changed(self._update(user_id, disabled_at=now() if disabled else None))

    def set_site_role(self, user_id: str, site_role: SiteRole) -> UserRecord:
        return self._changed(self._update(user_id, site_role=site_role))

    def login_failed(self, user_id: str, locked_until: datetime | None) -> UserRecord:
        with self.db.begin() as conn:
            conn.execute(
                tw.users.update()
                .where(tw.users.c.id == user_id)
                .values(failed_logins=tw.users.c.failed_logins + 1, locked_until=locked_until)
            )
        return self.get(user_id)

    # -- failed logins by submitted name (known or not) ---------------------------------
    def login_throttle(self, name: str) -> tuple[int, datetime | None]:
        """Failures in a row of logins as ``name`` and when its lock ends (if any)."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(tw.login_failures.c.failures, tw.login_failures.c.locked_until).where(
                    tw.login_failures.c.name == name
                )
            ).first()
        return (0, None) if row is None else (int(row.failures), utc(row.locked_until))

    def name_failed(self, name: str, failures: int, locked_until: datetime | None) -> None:
        """Store ``name``'s count of failures; names idle for ``forget`` go (one indexed
        delete per failure, so the table holds only names tried lately)."""
        at = now()
        values = {"failures": failures, "locked_until": locked_until, "last_failed_at": at}
        lf = tw.login_failures
        with self.db.begin() as conn:
            if conn.execute(lf.update().where(lf.c.name == name).values(**values)).rowcount:
                return
        try:
            with self.db.begin() as conn:
                conn.execute(lf.insert().values(name=name, **values))
        except IntegrityError:  # another process inserted it meanwhile
            with self.db.begin() as conn:
                conn.execute(lf.update().where(lf.c.name == name).values(**values))

    def purge_login_failures(self, forget: timedelta) -> int:
        lf = tw.login_failures
        at = now()
        with self.db.begin() as conn:
            done = conn.execute(
                lf.delete().where(
                    lf.c.last_failed_at < at - forget,
                    sa.or_(lf.c.locked_until.is_(None), lf.c.locked_until < at),
                )
            )
        return int(done.rowcount or 0)

    def name_succeeded(self, name: str) -> None:
        with self.db.begin() as conn:
            conn.execute(tw.login_failures.delete().where(tw.login_failures.c.name == name))

    def login_succeeded(self, user_id: str) -> UserRecord:
        return self._update(user_id, failed_logins=0, locked_until=None, last_login_at=now())

    def admin_without_password(self) -> UserRecord | None:
        """The first admin when it has no password yet (made by a migration)."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(tw.users)
                .where(tw.users.c.site_role == "admin", tw.users.c.password_hash.is_(None))
                .order_by(tw.users.c.created_at)
            ).first()
        return None if row is None else _user(row)

    def any_admin(self) -> bool:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(tw.users.c.id).where(
                    tw.users.c.site_role == "admin", tw.users.c.disabled_at.is_(None)
                )
            ).first()
        return row is not None

    # -- sessions -----------------------------------------------------------------------
    def create_session(self, user_id: str, ttl: timedelta) -> tuple[SessionRecord, str, str]:
        """A new session; returns it, its cookie secret and its CSRF token."""
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        at = now()
        with self.db.begin() as conn:
            conn.execute(
                tw.sessions.insert().values(
                    id=digest(secret),
                    user_id=user_id,
                    csrf_hash=digest(csrf),
                    created_at=at,
                    expires_at=at + ttl,
                    last_seen_at=at,
                )
            )
        return self.session(secret), secret, csrf  # type: ignore[return-value]

    def session(self, secret: str) -> SessionRecord | None:
        """The live session whose cookie secret this is, or ``None``."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(tw.sessions).where(
                    tw.sessions.c.id == digest(secret), tw.sessions.c.expires_at > now()
                )
            ).first()
        return None if row is None else _session(row)

    def touch_session(self, session_id: str, expires_at: datetime) -> None:
        with self.db.begin() as conn:
            conn.execute(
                tw.sessions.update()
                .where(tw.sessions.c.id == session_id)
                .values(last_seen_at=now(), expires_at=expires_at)
            )

    def end_session(self, secret: str) -> None:
        with self.db.begin() as conn:
            conn.execute(tw.sessions.delete().where(tw.sessions.c.id == digest(secret)))

    def purge_sessions(self) -> int:
        with self.db.begin() as conn:
            done = conn.execute(tw.sessions.delete().where(tw.sessions.c.expires_at <= now()))
        return int(done.rowcount or 0)
