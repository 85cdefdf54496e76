"""API keys: only a SHA-256 hash of each secret is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from pixelmill.backends.metadata import tables as t
from pixelmill.backends.metadata._time import utc
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.records import ApiKeyRecord
from pixelmill.errors import NotFound

Role = Literal["admin", "write", "read"]
_PREFIX = "pm_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _record(row: Any) -> ApiKeyRecord:
    data = dict(row._mapping)
    data.pop("hash", None)
    for name in ("created_at", "revoked_at"):
        data[name] = utc(data[name])
    return ApiKeyRecord(**data)


class KeyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: bumped by every revoke in this process: caches of authentications drop theirs
        self.revision = 0

    def create(self, name: str, role: Role = "write", *, user_id: str) -> tuple[ApiKeyRecord, str]:
        """Make a key of ``user_id``'s; returns the record and the secret, which is never
        stored. Its ``role`` is capped by the user's site role when used."""
        key_id = secrets.token_hex(6)
        secret = f"{_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
        with self.db.begin() as conn:
            conn.execute(
                t.api_keys.insert().values(
                    id=key_id,
                    name=name,
                    hash=hash_secret(secret),
                    role=role,
                    created_at=datetime.now(UTC),
                    user_id=user_id,
                )
            )
        return self.get(key_id), secret

    def get(self, key_id: str) -> ApiKeyRecord:
        with self.db.begin() as conn:
            row = conn.execute(sa.select(t.api_keys).where(t.api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"no API key {key_id!r}")
        return _record(row)

    def authenticate(self, secret: str) -> ApiKeyRecord | None:
        """The live key whose secret this is, or ``None``."""
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(t.api_keys).where(
                    t.api_keys.c.hash == hash_secret(secret), t.api_keys.c.revoked_at.is_(None)
                )
            ).first()
        return None if row is None else _record(row)

    def list(self, *, user_id: str | None = None) -> list[ApiKeyRecord]:
        query = sa.select(t.api_keys).order_by(t.api_keys.c.created_at)
        if user_id is not None:
            query = query.where(t.api_keys.c.user_id == user_id)
        with self.db.begin() as conn:
            rows = conn.execute(query).all()
        return [_record(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKeyRecord:
        self.get(key_id)
        with self.db.begin() as conn:
            conn.execute(
                t.api_keys.update()
                .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        self.revision += 1
        return self.get(key_id)

    def any_admin(self) -> bool:
        with self.db.begin() as conn:
            return (
                conn.execute(
                    sa.select(t.api_keys.c.id).where(
                        t.api_keys.c.role == "admin", t.api_keys.c.revoked_at.is_(None)
                    )
                ).first()
                is not None
            )
