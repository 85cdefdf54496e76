"""What the SQL job store's parts share: row → record conversion, JSON parameters, the
lazy-commit engine, the job row lock and the event insert."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.backends.metadata import tables as image_tables
from pixelmill.backends.metadata._time import utc
from pixelmill.backends.metadata.database import Database, make_engine, unavailable_as_503
from pixelmill.backends.metadata.jobs.base import EventRecord, JobRecord, TaskRecord
from pixelmill.backends.metadata.pg_group import GroupCommit
from pixelmill.backends.metadata.tables_jobs import job_events, jobs
from pixelmill.errors import NotFound, missing_ids

JOB_FIELDS = frozenset(JobRecord.__dataclass_fields__)

#: as lenient as the JSON columns' own encoder: int keys become strings; numpy values
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def to_json(value: Any) -> str | None:
    """A value for a ``CAST(%(x)s AS json)`` parameter (``None`` stays SQL NULL)."""
    return None if value is None else orjson.dumps(value, option=_JSON_OPTIONS).decode()


def job_of(mapping: Mapping[str, Any]) -> JobRecord:
    """The record of a job row (extra columns, e.g. ``final_state``, are ignored)."""
    return JobRecord(**{k: utc(v) for k, v in mapping.items() if k in JOB_FIELDS})


def task_of(mapping: Mapping[str, Any]) -> TaskRecord:
    return TaskRecord(**{k: utc(v) for k, v in mapping.items()})


def job_row(row: Any) -> JobRecord:
    return job_of(row._mapping)


def task_row(row: Any) -> TaskRecord:
    return task_of(row._mapping)


def event_row(row: Any) -> EventRecord:
    return EventRecord(**{k: utc(v) for k, v in row._mapping.items()})


def new_job(row: dict[str, Any]) -> JobRecord:
    """The record of a job just inserted from ``row`` (no read after the write)."""
    fields: dict[str, Any] = {name: row.get(name) for name in JOB_FIELDS}
    return JobRecord(**fields)


#: built once with bound parameters: built per call, SQLAlchemy's construction cost more
#: than SQLite's insert (docs/benchmarks.md, "Storing a mask, made cheaper")
_INSERT_EVENT = job_events.insert()
_LOCK_JOB = (
    jobs.update()
    .where(jobs.c.id == sa.bindparam("b_job_id"))
    .values(updated_at=jobs.c.updated_at)
    .returning(*jobs.c)
)


def check_images(conn: Connection, images: Sequence[str]) -> None:
    """Raise ``InvalidParameter`` (422) unless every id in ``images`` is stored."""
    if not images:
        return
    table = image_tables.images
    found: set[str] = set()
    for start in range(0, len(images), 500):
        chunk = list(images[start : start + 500])
        found.update(conn.execute(sa.select(table.c.id).where(table.c.id.in_(chunk))).scalars())
    missing = [i for i in images if i not in found]
    if missing:
        raise missing_ids("input image(s) do not exist", missing, field="inputs")


class SqlStoreBase:
    """The database handles of the SQL job store and the two statements every
    transition starts with."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pg = db.dialect == "postgresql"
        self._lazy_engine: sa.Engine | None = None
        self._lazy_lock = threading.Lock()
        self._groups: dict[bool, GroupCommit] = {}

    check_images = staticmethod(check_images)

    def _lazy_pg(self) -> sa.Engine:
        with self._lazy_lock:
            if self._lazy_engine is None:
                self._lazy_engine = make_engine(
                    self.db.url,
                    connect_args={"options": "-c synchronous_commit=off"},
                    pool_size=self.db.pool_size,
                    pool="jobs",
                )
            return self._lazy_engine

    def _grouped(self, *, lazy: bool = False) -> GroupCommit:
        """Group commit (:mod:`~pixelmill.backends.metadata.pg_group`) on the engine
        whose commits wait for the disk, or (``lazy``) on the one whose do not."""
        group = self._groups.get(lazy)
        if group is None:
            engine = self._lazy_pg() if lazy else self.db.engine
            with self._lazy_lock:
                group = self._groups.setdefault(lazy, GroupCommit(engine))
        return group

    @contextmanager
    def _lazy(self) -> Iterator[Connection]:
        """A transaction whose commit need not wait for the disk (PostgreSQL
        ``synchronous_commit=off``): for writes that are harmless to lose in a DB crash
        — a task's start or progress (the broker redelivers it anyway), a publish mark
        (a lost one only causes a duplicate, idempotent re-publish). WAL order still
        holds: any later synchronous commit makes these durable too."""
        if not self._pg:
            with self.db.begin() as conn:
                yield conn
            return
        with unavailable_as_503(), self._lazy_pg().begin() as conn:
            yield conn

    def dispose(self) -> None:
        if self._lazy_engine is not None:
            self._lazy_engine.dispose()

    def _lock_job(self, conn: Connection, job_id: str) -> JobRecord | None:
        # A write first: it takes the job's row lock on PostgreSQL and the write lock on
        # SQLite (whose driver only opens the transaction at the first DML statement),
        # so the read below cannot be stale when this transaction updates counters.
        row = conn.execute(_LOCK_JOB, {"b_job_id": job_id}).first()
        return None if row is None else job_row(row)

    def get(self, job_id: str, *, owner: str | None = None) -> JobRecord:
        """The job; with ``owner``, only if that key submitted it — another key's job
        is ``NotFound`` exactly like an unknown id (its existence does not leak)."""
        query = sa.select(jobs).where(jobs.c.id == job_id)
        if owner is not None:
            query = query.where(jobs.c.owner == owner)
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        return job_row(row)

    def _event(
        self, conn: Connection, job_id: str, type_: str, data: dict[str, Any], at: datetime
    ) -> None:
        conn.execute(_INSERT_EVENT, {"job_id": job_id, "type": type_, "data": data, "at": at})
