"""Quotas in the metadata DB: per-user overrides, what a user uses, and the stored-bytes
count that every insert and delete of an image, dataset or model version keeps in step.

**Constant time, race-safe.** Each user's stored bytes live in one ``user_usage`` row.
The transaction that records a new object adds its size there first
(:func:`count_stored`: one upsert returning the new total) and refuses the object when
the total passes the limit, which rolls the addition back with it; a delete subtracts in
its own transaction. The upsert locks the user's row until the transaction ends
(PostgreSQL's row lock; SQLite's database write lock), so two uploads of one user take
turns and together never pass the limit: the bound is 0 bytes. :func:`stored_bytes`
sums the rows themselves, for reports.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.backends.metadata import tables as t
from pixelmill.backends.metadata import tables_jobs as tj
from pixelmill.backends.metadata import tables_ml as tm
from pixelmill.backends.metadata import tables_quotas as tq
from pixelmill.backends.metadata._time import now, utc
from pixelmill.backends.metadata.database import Database
from pixelmill.errors import QuotaExceeded

#: the limits an override may set (``None`` in a field: the site default)
FIELDS = ("stored_bytes", "concurrent_jobs", "training_minutes", "max_epochs")


@dataclass(frozen=True)
class QuotaOverride:
    """A user's own limits; ``None``: the site default, ``0``: unlimited."""

    user_id: str
    stored_bytes: int | None = None
    concurrent_jobs: int | None = None
    training_minutes: int | None = None
    max_epochs: int | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None


@dataclass(frozen=True)
class StoredBytes:
    """What a user stores, by kind, in bytes (each handle counted in full)."""

    images: int
    datasets: int
    models: int

    @property
    def total(self) -> int:
        return self.images + self.datasets + self.models


def stored_bytes(conn: Connection, user_id: str) -> StoredBytes:
    """Bytes of ``user_id``'s images, datasets and model versions."""

    def total(column: Any, owner: Any) -> int:
        query = sa.select(sa.func.coalesce(sa.func.sum(column), 0)).where(owner == user_id)
        return int(conn.execute(query).scalar_one())

    return StoredBytes(
        images=total(t.images.c.size_bytes, t.images.c.owner_id),
        datasets=total(tm.datasets.c.size_bytes, tm.datasets.c.created_by),
        models=total(tm.model_versions.c.size_bytes, tm.model_versions.c.created_by),
    )


def count_stored(conn: Connection, user_id: str, adding: int, limit: int | None = None) -> None:
    """Add ``adding`` bytes (negative: freed) to ``user_id``'s stored total in ``conn``'s
    transaction, before (or with) the insert or delete of the object. Raise
    :class:`QuotaExceeded` when a positive addition takes the total past ``limit``
    (``None``: no limit); the caller's transaction then rolls back, the count with it."""
    if not user_id or not adding:
        return
    upsert = _add_usage(conn.dialect.name)
    total = int(conn.execute(upsert, {"user_id": user_id, "adding": adding}).scalar_one())
    if limit is not None and adding > 0 and total > limit:
        raise storage_exceeded(adding, limit, total - adding)


@functools.cache
def _add_usage(dialect: str) -> Any:
    """The upsert of :func:`count_stored`, built once per dialect with bound parameters
    (built per call, its construction and cache-key walk were most of an image row's
    cost on SQLite: docs/benchmarks.md, "Storing a mask, made cheaper")."""
    usage = tq.user_usage
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    row = insert(usage).values(user_id=sa.bindparam("user_id"), stored_bytes=sa.bindparam("adding"))
    return row.on_conflict_do_update(
        index_elements=[usage.c.user_id],
        set_={"stored_bytes": usage.c.stored_bytes + row.excluded.stored_bytes},
    ).returning(usage.c.stored_bytes)


def storage_exceeded(adding: int, limit: int, used: int) -> QuotaExceeded:
    """The refusal of ``adding`` bytes to a user who stores ``used`` of ``limit``."""
    return QuotaExceeded(
        f"storing {adding} more bytes would exceed your storage quota of {limit} bytes "
        f"({used} used); delete images, datasets or model versions, or ask an admin",
        quota="stored_bytes",
        limit=limit,
        used=used,
        requested=adding,
    )


class QuotaRepository:
    """Overrides, usage (stored bytes, active jobs, training seconds) and the training
    minutes each run records."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- overrides ----------------------------------------------------------------------
    def override(self, user_id: str) -> QuotaOverride | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(tq.user_quotas).where(tq.user_quotas.c.user_id == user_id)
            ).first()
        if row is None:
            return None
        data = dict(row._mapping)
        data["updated_at"] = utc(data["updated_at"])
        return QuotaOverride(**data)

    def set_override(
        self, user_id: str, limits: dict[str, int | None], *, by: str | None
    ) -> QuotaOverride:
        """Replace ``user_id``'s override with ``limits`` (fields of :data:`FIELDS`; a
        missing or ``None`` one is the site default). All ``None`` removes the row."""
        values = {name: limits.get(name) for name in FIELDS}
        q = tq.user_quotas
        with self.db.begin() as conn:
            conn.execute(q.delete().where(q.c.user_id == user_id))
            if any(v is not None for v in values.values()):
                conn.execute(
                    q.insert().values(user_id=user_id, updated_at=now(), updated_by=by, **values)
                )
        return self.override(user_id) or QuotaOverride(user_id)

    # -- usage --------------------------------------------------------------------------
    def stored(self, user_id: str) -> StoredBytes:
        with self.db.read() as conn:
            return stored_bytes(conn, user_id)

    def active_jobs(self, user_id: str) -> int:
        """``user_id``'s queued and running jobs (index ``ix_jobs_owner_state``)."""
        jobs = tj.jobs
        query = (
            sa.select(sa.func.count())
            .select_from(jobs)
            .where(jobs.c.owner == user_id, jobs.c.state.in_(("queued", "running")))
        )
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def training_seconds(
        self, user_id: str, *, since: datetime, except_job: str | None = None
    ) -> float:
        """Seconds of training runs of ``user_id`` started at or after ``since``, other
        than ``except_job``'s."""
        u = tq.training_usage
        query = sa.select(sa.func.coalesce(sa.func.sum(u.c.seconds), 0.0)).where(
            u.c.user_id == user_id, u.c.started_at >= since
        )
        if except_job is not None:
            query = query.where(u.c.job_id != except_job)
        with self.db.read() as conn:
            return float(conn.execute(query).scalar_one())

    def run_seconds(self, job_id: str) -> float:
        """Seconds recorded for the training job ``job_id`` so far (0 for a new run)."""
        u = tq.training_usage
        with self.db.read() as conn:
            found = conn.execute(sa.select(u.c.seconds).where(u.c.job_id == job_id)).scalar()
        return float(found or 0.0)

    def record_run(self, job_id: str, user_id: str, seconds: float) -> None:
        """Set the seconds the training job ``job_id`` of ``user_id`` has used."""
        u = tq.training_usage
        stamp = now()
        with self.db.begin() as conn:
            updated = conn.execute(
                u.update().where(u.c.job_id == job_id).values(seconds=seconds, updated_at=stamp)
            )
            if updated.rowcount == 0:
                conn.execute(
                    u.insert().values(
                        job_id=job_id,
                        user_id=user_id,
                        started_at=stamp,
                        updated_at=stamp,
                        seconds=seconds,
                    )
                )
