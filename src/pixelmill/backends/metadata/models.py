"""Repositories of the ML tables: datasets and the model registry.

Alias moves and their audit entries are written in one transaction, so the audit trail
never disagrees with the aliases.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from pixelmill.backends.metadata import tables_ml as t
from pixelmill.backends.metadata._time import utc
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.ml_records import (
    AliasRecord,
    AuditRecord,
    DatasetRecord,
    ModelRecord,
    VersionRecord,
)
from pixelmill.backends.metadata.model_permissions import grant_on
from pixelmill.backends.metadata.quotas import count_stored
from pixelmill.errors import Conflict, NotFound

#: version numbers are 32-bit INTEGER columns (PostgreSQL); SQLite's are 64-bit
_MAX_VERSION = 2**31 - 1


def _row(row: Any) -> dict[str, Any]:
    return {k: utc(v) for k, v in row._mapping.items()}


__all__ = [
    "AliasRecord",
    "AuditRecord",
    "DatasetRecord",
    "DatasetRepository",
    "ModelRecord",
    "ModelRepository",
    "VersionRecord",
]


class DatasetRepository:
    """Datasets belong to their uploader (``created_by``, a user id). ``owner`` scopes a
    call to one uploader's datasets (``None``: all of them, for admins): another user's
    dataset answers 404 exactly like one that does not exist."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, *, max_stored_bytes: int | None = None, **fields: Any
    ) -> tuple[DatasetRecord, bool]:
        """Insert with a random id; the uploader's dataset with the same sha256 wins and
        is returned with ``created=False`` (another uploader's never does). The
        uploader's storage quota (``max_stored_bytes``) is checked in the insert's
        transaction (:func:`.quotas.count_stored`)."""
        owner = fields.get("created_by")
        existing = self.find_by_sha256(fields["sha256"], owner=owner)
        if existing is not None:
            return existing, False
        fields.setdefault("created_at", datetime.now(UTC))
        fields.setdefault("id", uuid.uuid4().hex)
        try:
            with self.db.begin() as conn:
                count_stored(conn, owner or "", fields["size_bytes"], max_stored_bytes)
                conn.execute(t.datasets.insert().values(**fields))
        except IntegrityError:
            existing = self.find_by_sha256(fields["sha256"], owner=owner)
            if existing is None:
                raise
            return existing, False
        return self.get(fields["id"]), True

    def get(self, dataset_id: str, *, owner: str | None = None) -> DatasetRecord:
        query = sa.select(t.datasets).where(t.datasets.c.id == dataset_id)
        if owner is not None:
            query = query.where(t.datasets.c.created_by == owner)
        with self.db.begin() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no dataset {dataset_id!r}")
        return DatasetRecord(**_row(row))

    def find_by_sha256(self, sha256: str, *, owner: str | None) -> DatasetRecord | None:
        """``owner``'s dataset with these bytes (``created_by IS NULL`` for ``None``)."""
        c = t.datasets.c
        who = c.created_by.is_(None) if owner is None else c.created_by == owner
        with self.db.begin() as conn:
            row = conn.execute(sa.select(t.datasets).where(c.sha256 == sha256, who)).first()
        return None if row is None else DatasetRecord(**_row(row))

    def sha256_in_use(self, sha256: str) -> bool:
        """Whether any dataset (anyone's) still holds these bytes."""
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(t.datasets.c.id).where(t.datasets.c.sha256 == sha256).limit(1)
            ).first()
        return row is not None

    def list(self, *, limit: int = 100, owner: str | None = None) -> list[DatasetRecord]:
        query = sa.select(t.datasets).order_by(t.datasets.c.created_at.desc()).limit(limit)
        if owner is not None:
            query = query.where(t.datasets.c.created_by == owner)
        with self.db.begin() as conn:
            return [DatasetRecord(**_row(r)) for r in conn.execute(query)]

    def delete(self, dataset_id: str, *, owner: str | None = None) -> DatasetRecord:
        record = self.get(dataset_id, owner=owner)
        with self.db.begin() as conn:
            gone = conn.execute(t.datasets.delete().where(t.datasets.c.id == dataset_id)).rowcount
            if gone:
                count_stored(conn, record.created_by or "", -record.size_bytes)
        return record


class ModelRepository:
    """Models, versions, aliases and the audit trail."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: writes through this repository (versions, aliases); caches of what a reference
        #: resolves to compare it to drop their entries at once (services/inference)
        self.changes = 0

    # -- models and versions ------------------------------------------------------------
    def add_version(
        self,
        *,
        model: str,
        task: str,
        description: str = "",
        manager: str | None = None,
        new_only: bool = False,
        max_stored_bytes: int | None = None,
        **fields: Any,
    ) -> VersionRecord:
        """Create the model if new (``manager``, a user id, gets ``manage`` on it), then
        its next version (numbered 1, 2, ...). ``new_only``: 409 if the model exists.
        The creator's storage quota (``max_stored_bytes``) is checked first, in the
        same transaction (:func:`.quotas.count_stored`)."""
        now = datetime.now(UTC)
        for _attempt in range(5):
            try:
                with self.db.begin() as conn:
                    count_stored(
                        conn, fields.get("created_by") or "", fields["size_bytes"], max_stored_bytes
                    )
                    if (
                        conn.execute(
                            sa.select(t.models.c.name).where(t.models.c.name == model)
                        ).first()
                        is None
                    ):
                        conn.execute(
                            t.models.insert().values(
                                name=model, task=task, description=description, created_at=now
                            )
                        )
                        if manager:
                            grant_on(conn, model, manager, "manage", manager)
                    elif new_only:
                        raise Conflict(f"model {model!r} was just registered by someone else")
                    top = conn.execute(
                        sa.select(sa.func.max(t.model_versions.c.version)).where(
                            t.model_versions.c.model == model
                        )
                    ).scalar()
                    # numbers of deleted versions are never reused: the audit remembers them
                    audited = conn.execute(
                        sa.select(sa.func.max(t.model_audit.c.to_version)).where(
                            t.model_audit.c.model == model, t.model_audit.c.action == "register"
                        )
                    ).scalar()
                    version = max(int(top or 0), int(audited or 0)) + 1
                    vid = uuid.uuid4().hex
                    conn.execute(
                        t.model_versions.insert().values(
                            id=vid, model=model, version=version, created_at=now, **fields
                        )
                    )
                    self._audit(
                        conn, model, "register", None, None, version, fields.get("created_by"), None
                    )
                self.changes += 1
                return self.version(model, version)
            except IntegrityError:
                continue  # a concurrent registration took the number; take the next
        raise Conflict(f"could not allocate a version number for {model!r}")

    def get_model(self, name: str) -> ModelRecord:
        with self.db.begin() as conn:
            row = conn.execute(sa.select(t.models).where(t.models.c.name == name)).first()
        if row is None:
            raise NotFound(f"no model {name!r}")
        return ModelRecord(**_row(row))

    def list_models(self) -> list[ModelRecord]:
        with self.db.begin() as conn:
            return [
                ModelRecord(**_row(r))
                for r in conn.execute(sa.select(t.models).order_by(t.models.c.name))
            ]

    def version(self, model: str, version: int) -> VersionRecord:
        row = None
        if 1 <= version <= _MAX_VERSION:  # past the column's range: none such, not a DB error
            with self.db.begin() as conn:
                row = conn.execute(
                    sa.select(t.model_versions).where(
                        t.model_versions.c.model == model, t.model_versions.c.version == version
                    )
                ).first()
        if row is None:
            self.get_model(model)
            raise NotFound(f"model {model!r} has no version {version}")
        return VersionRecord(**_row(row))

    def versions(self, model: str) -> list[VersionRecord]:
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(t.model_versions)
                .where(t.model_versions.c.model == model)
                .order_by(t.model_versions.c.version)
            ).all()
        return [VersionRecord(**_row(r)) for r in rows]

    def latest(self, model: str) -> VersionRecord:
        versions = self.versions(model)
        if not versions:
            self.get_model(model)
            raise NotFound(f"model {model!r} has no versions")
        return versions[-1]

    def find_version_by_sha256(self, model: str, sha256: str) -> VersionRecord | None:
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(t.model_versions)
                .where(t.model_versions.c.model == model, t.model_versions.c.sha256 == sha256)
                .order_by(t.model_versions.c.version)
            ).first()
        return None if row is None else VersionRecord(**_row(row))

    def delete_version(self, model: str, version: int, *, actor: str | None) -> VersionRecord:
        """Delete a version; refused (409) while any alias points at it."""
        record = self.version(model, version)
        with self.db.begin() as conn:
            aliases = [
                r.alias
                for r in conn.execute(
                    sa.select(t.model_aliases.c.alias).where(
                        t.model_aliases.c.model == model, t.model_aliases.c.version == version
                    )
                )
            ]
            if aliases:
                raise Conflict(
                    f"{model}:{version} is still the target of alias(es) {', '.join(sorted(aliases))}; "
                    "move or delete them first",
                    aliases=sorted(aliases),
                )
            gone = conn.execute(
                t.model_versions.delete().where(
                    t.model_versions.c.model == model, t.model_versions.c.version == version
                )
            ).rowcount
            if gone:
                count_stored(conn, record.created_by or "", -record.size_bytes)
            self._audit(conn, model, "delete", None, version, None, actor, None)
        self.changes += 1
        return record

    def sha256_in_use(self, sha256: str) -> bool:
        with self.db.begin() as conn:
            return (
                conn.execute(
                    sa.select(t.model_versions.c.id).where(t.model_versions.c.sha256 == sha256)
                ).first()
                is not None
            )

    # -- aliases ------------------------------------------------------------------------
    def aliases(self, model: str) -> list[AliasRecord]:
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(t.model_aliases)
                .where(t.model_aliases.c.model == model)
                .order_by(t.model_aliases.c.alias)
            ).all()
        return [AliasRecord(**_row(r)) for r in rows]

    def alias(self, model: str, alias: str) -> AliasRecord:
        with self.db.begin() as conn:
            row = conn.execute(
                sa.select(t.model_aliases).where(
                    t.model_aliases.c.model == model, t.model_aliases.c.alias == alias
                )
            ).first()
        if row is None:
            self.get_model(model)
            raise NotFound(f"model {model!r} has no alias {alias!r}")
        return AliasRecord(**_row(row))

    def move_alias(
        self,
        model: str,
        alias: str,
        version: int,
        *,
        action: str,
        actor: str | None,
        note: str | None = None,
        expected: int | None = None,
    ) -> tuple[int | None, AliasRecord]:
        """Point ``alias`` at ``version`` (which must exist) and audit it as ``action``.
        Returns the previous version (``None`` if the alias is new) and the alias.
        ``expected``: only if the alias still names that version, checked in the same
        transaction (409 if it moved meanwhile: a rollback decided on what it held)."""
        self.version(model, version)
        now = datetime.now(UTC)
        with self.db.begin() as conn:
            where = (t.model_aliases.c.model == model, t.model_aliases.c.alias == alias)
            row = conn.execute(
                sa.select(t.model_aliases.c.version).where(*where).with_for_update()
            ).first()
            previous = None if row is None else int(row.version)
            if expected is not None and previous != expected:
                raise Conflict(
                    f"{model}@{alias} moved meanwhile (to {previous}, not {expected}): "
                    "look again before moving it"
                )
            values = {"version": version, "updated_by": actor, "updated_at": now}
            if row is None:
                conn.execute(t.model_aliases.insert().values(model=model, alias=alias, **values))
            else:
                conn.execute(t.model_aliases.update().where(*where).values(**values))
            self._audit(conn, model, action, alias, previous, version, actor, note)
        self.changes += 1
        return previous, self.alias(model, alias)

    def delete_alias(self, model: str, alias: str, *, actor: str | None) -> AliasRecord:
        record = self.alias(model, alias)
        with self.db.begin() as conn:
            conn.execute(
                t.model_aliases.delete().where(
                    t.model_aliases.c.model == model, t.model_aliases.c.alias == alias
                )
            )
            self._audit(conn, model, "unalias", alias, record.version, None, actor, None)
        self.changes += 1
        return record

    # -- audit --------------------------------------------------------------------------
    def audit(self, model: str) -> list[AuditRecord]:
        """Oldest first."""
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(t.model_audit)
                .where(t.model_audit.c.model == model)
                .order_by(t.model_audit.c.id)
            ).all()
        return [AuditRecord(**_row(r)) for r in rows]

    def record_event(
        self, model: str, action: str, *, version: int | None, note: str, actor: str | None = None
    ) -> None:
        with self.db.begin() as conn:
            self._audit(conn, model, action, None, None, version, actor, note)

    @staticmethod
    def _audit(
        conn: Connection,
        model: str,
        action: str,
        alias: str | None,
        from_version: int | None,
        to_version: int | None,
        actor: str | None,
        note: str | None,
    ) -> None:
        conn.execute(
            t.model_audit.insert().values(
                model=model,
                action=action,
                alias=alias,
                from_version=from_version,
                to_version=to_version,
                actor=actor,
                note=note,
                at=datetime.now(UTC),
            )
        )
