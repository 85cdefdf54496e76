"""Job repository: jobs, tasks and events with guarded, idempotent state transitions.

States: a job is ``queued`` → ``running`` → ``succeeded`` | ``failed`` | ``cancelled``;
so is each task (a task goes back to ``queued`` while it waits for a retry). Every
transition is an ``UPDATE ... WHERE state IN (...)`` inside one transaction that first
locks the job row, so

* a redelivered task cannot finish twice (the second ``running → succeeded`` matches
  no row and is reported as a duplicate);
* a job moves to a terminal state exactly once, by whichever task completes it;
* a job's events get ids in commit order (the job row lock serialises them), so a
  reader polling ``id > last`` never skips one.

On PostgreSQL the hot transitions (create, start, finish) run as one statement each
(:mod:`~pixelmill.backends.metadata.jobs_pg`) with the same guards; SQLite runs the
portable transactions below.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from pixelmill.backends.metadata import jobs_pg
from pixelmill.backends.metadata import tables as image_tables
from pixelmill.backends.metadata.database import Database, make_engine, unavailable_as_503
from pixelmill.backends.metadata.tables_jobs import job_events, job_tasks, jobs
from pixelmill.errors import BackendUnavailable, InvalidParameter, NotFound

State = Literal["queued", "running", "succeeded", "failed", "cancelled"]
ACTIVE: tuple[State, ...] = ("queued", "running")
TERMINAL: tuple[State, ...] = ("succeeded", "failed", "cancelled")


def new_job_id() -> str:
    """32 hex chars: 48 bits of milliseconds then 80 random bits, so ids sort by time."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite returns naive datetimes
        return value.replace(tzinfo=UTC)
    return value


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobRecord:
    id: str
    kind: str
    state: State
    queue: str
    priority: int
    params: dict[str, Any]
    inputs: list[str]
    owner: str
    idempotency_key: str | None
    request_hash: str | None
    total: int
    succeeded: int
    failed: int
    cancelled: int
    time_limit_s: float
    max_retries: int
    result: Any
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True)
class TaskRecord:
    job_id: str
    idx: int
    queue: str
    state: State
    input: str | None
    attempts: int
    progress: float
    message: str | None
    result_image: str | None
    artifacts: list[dict[str, Any]] | None
    result: Any
    error: str | None
    last_error: str | None
    published_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class EventRecord:
    id: int
    job_id: str
    type: str
    data: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class TaskRef:
    """What the broker needs to (re)publish one task."""

    job_id: str
    idx: int
    queue: str
    priority: int


@dataclass(frozen=True)
class PurgedJob:
    """A job deleted by :meth:`JobRepository.purge_finished`: its id and the storage
    keys of its tasks' artifacts."""

    id: str
    artifact_keys: list[str]


@dataclass(frozen=True)
class Started:
    """A task run that may go ahead: the job (as of the start) and the task's attempt."""

    job: JobRecord
    task: TaskRecord


@dataclass
class Finish:
    """The outcome of one task run, as recorded by :meth:`JobRepository.finish_task`."""

    state: Literal["succeeded", "failed", "cancelled"]
    result_image: str | None = None
    artifacts: list[dict[str, Any]] | None = None
    result: Any = None
    error: str | None = None
    #: states the task may be finished from (dead-lettering also accepts ``queued``)
    from_states: tuple[State, ...] = ("running",)
    extra: dict[str, Any] = field(default_factory=dict)


def _job(row: Any) -> JobRecord:
    return _job_of(row._mapping)


def _job_of(mapping: Any) -> JobRecord:
    data = {k: v for k, v in mapping.items() if k in _JOB_FIELDS}
    for name in ("created_at", "started_at", "finished_at", "updated_at"):
        data[name] = _utc(data[name])
    return JobRecord(**data)


_JOB_FIELDS = frozenset(JobRecord.__dataclass_fields__)


def _new_job(row: dict[str, Any]) -> JobRecord:
    """The record of a job just inserted from ``row`` (no read after the write)."""
    fields: dict[str, Any] = {name: row.get(name) for name in _JOB_FIELDS}
    return JobRecord(**fields)


#: as lenient as the JSON columns' own encoder: int keys become strings; numpy values
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _json(value: Any) -> str | None:
    """A value for a ``CAST(%(x)s AS json)`` parameter (``None`` stays SQL NULL)."""
    return None if value is None else orjson.dumps(value, option=_JSON_OPTIONS).decode()


def _task(row: Any) -> TaskRecord:
    return _task_of(row._mapping)


def _task_of(mapping: Any) -> TaskRecord:
    data = dict(mapping)
    for name in ("published_at", "created_at", "started_at", "finished_at"):
        data[name] = _utc(data[name])
    return TaskRecord(**data)


def _event(row: Any) -> EventRecord:
    data = dict(row._mapping)
    data["at"] = _utc(data["at"])
    return EventRecord(**data)


class JobRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pg = db.dialect == "postgresql"
        self._lazy_engine: sa.Engine | None = None
        self._lazy_lock = threading.Lock()

    def _lazy_pg(self) -> sa.Engine:
        with self._lazy_lock:
            if self._lazy_engine is None:
                self._lazy_engine = make_engine(
                    self.db.url,
                    connect_args={"options": "-c synchronous_commit=off"},
                    pool_size=self.db.pool_size,
                )
            return self._lazy_engine

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

    # -- create and read ----------------------------------------------------------------
    def create(
        self,
        job: dict[str, Any],
        tasks: Sequence[tuple[int, str | None]],
        *,
        images: Sequence[str] = (),
    ) -> tuple[JobRecord, bool]:
        """Insert a job, its tasks (``(index, input)``) and its ``queued`` event, in one
        transaction that first checks that every id in ``images`` is a stored image
        (``InvalidParameter`` listing the ``missing`` ones otherwise).

        Returns ``(record, created)``; when ``(owner, idempotency_key)`` exists already
        the existing job is returned with ``created=False``.
        """
        now = _now()
        row = {
            "state": "queued",
            "succeeded": 0,
            "failed": 0,
            "cancelled": 0,
            "created_at": now,
            "updated_at": now,
            **job,
            "total": len(tasks),
        }
        if self._pg:
            return self._create_pg(row, tasks, images, now)
        try:
            with self.db.begin() as conn:
                self.check_images(conn, images)
                conn.execute(jobs.insert().values(**row))
                conn.execute(
                    job_tasks.insert(),
                    [
                        {
                            "job_id": row["id"],
                            "idx": idx,
                            "queue": row["queue"],
                            "state": "queued",
                            "input": image,
                            "attempts": 0,
                            "progress": 0.0,
                            "created_at": now,
                        }
                        for idx, image in tasks
                    ],
                )
                self._event(conn, row["id"], "state", {"state": "queued"}, now)
        except IntegrityError:
            existing = self._idempotent_twin(row)
            if existing is None:
                raise
            return existing, False
        return _new_job(row), True

    def _create_pg(
        self,
        row: dict[str, Any],
        tasks: Sequence[tuple[int, str | None]],
        images: Sequence[str],
        now: datetime,
    ) -> tuple[JobRecord, bool]:
        params = {
            "id": row["id"],
            "kind": row["kind"],
            "queue": row["queue"],
            "priority": row["priority"],
            "params": _json(row["params"]),
            "inputs": _json(row["inputs"]),
            "owner": row.get("owner", ""),
            "idempotency_key": row.get("idempotency_key"),
            "request_hash": row.get("request_hash"),
            "total": row["total"],
            "time_limit_s": float(row["time_limit_s"]),
            "max_retries": row["max_retries"],
            "now": now,
            "check": _json(list(images)),
            "n_check": len(images),
            "tasks": _json([{"idx": idx, "input": image} for idx, image in tasks]),
        }
        if jobs_pg.run(self.db.engine, jobs_pg.CREATE, params) is not None:
            return _new_job(row), True
        # nothing inserted: an image is missing, the idempotency key is taken — or the
        # first attempt did commit and only its answer was lost (then the id exists)
        with self.db.read() as conn:
            self.check_images(conn, images)
            if conn.execute(sa.select(jobs.c.id).where(jobs.c.id == row["id"])).first():
                return _new_job(row), True
        existing = self._idempotent_twin(row)
        if existing is None:
            raise BackendUnavailable(f"job {row['id']} could not be stored")
        return existing, False

    def _idempotent_twin(self, row: dict[str, Any]) -> JobRecord | None:
        key = row.get("idempotency_key")
        return self.find_by_idempotency_key(row.get("owner", ""), key) if key else None

    @staticmethod
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
            raise InvalidParameter(
                f"{len(missing)} input image(s) do not exist", field="inputs", missing=missing[:50]
            )

    def find_by_idempotency_key(self, owner: str, key: str) -> JobRecord | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(jobs).where(jobs.c.owner == owner, jobs.c.idempotency_key == key)
            ).first()
        return None if row is None else _job(row)

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
        return _job(row)

    def tasks(self, job_id: str) -> list[TaskRecord]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(job_tasks).where(job_tasks.c.job_id == job_id).order_by(job_tasks.c.idx)
            ).all()
        return [_task(r) for r in rows]

    def task(self, job_id: str, idx: int) -> TaskRecord:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(job_tasks).where(job_tasks.c.job_id == job_id, job_tasks.c.idx == idx)
            ).first()
        if row is None:
            raise NotFound(f"job {job_id!r} has no task {idx}")
        return _task(row)

    def list_jobs(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        after: str | None = None,
        owner: str | None = None,
    ) -> list[JobRecord]:
        """Newest first; ``after`` is the last id of the previous page; ``owner`` keeps
        the jobs of one key."""
        query = sa.select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        if owner is not None:
            query = query.where(jobs.c.owner == owner)
        if state:
            query = query.where(jobs.c.state == state)
        if kind:
            query = query.where(jobs.c.kind == kind)
        if after:
            query = query.where(jobs.c.id < after)
        with self.db.read() as conn:
            return [_job(r) for r in conn.execute(query).all()]

    def count(self, *, state: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(jobs)
        if state:
            query = query.where(jobs.c.state == state)
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())

    def queued_tasks(self, queue: str) -> int:
        """Tasks waiting in ``queue`` (including ones not yet handed to the broker)."""
        with self.db.read() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(job_tasks)
                    .where(job_tasks.c.state == "queued", job_tasks.c.queue == queue)
                ).scalar_one()
            )

    def events(self, job_id: str, *, after: int = 0, limit: int = 500) -> list[EventRecord]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(job_events)
                .where(job_events.c.job_id == job_id, job_events.c.id > after)
                .order_by(job_events.c.id)
                .limit(limit)
            ).all()
        return [_event(r) for r in rows]

    # -- publishing ---------------------------------------------------------------------
    def mark_published(self, job_id: str, idxs: Sequence[int] | None = None) -> None:
        query = job_tasks.update().where(
            job_tasks.c.job_id == job_id, job_tasks.c.published_at.is_(None)
        )
        if idxs is not None:
            query = query.where(job_tasks.c.idx.in_(list(idxs)))
        with self._lazy() as conn:
            conn.execute(query.values(published_at=_now()))

    def mark_jobs_published(self, job_ids: Sequence[str]) -> None:
        """Mark every task of ``job_ids`` as handed to the broker (one statement)."""
        with self._lazy() as conn:
            conn.execute(
                job_tasks.update()
                .where(job_tasks.c.job_id.in_(list(job_ids)), job_tasks.c.published_at.is_(None))
                .values(published_at=_now())
            )

    def unmark_published(self, refs: Sequence[TaskRef]) -> None:
        with self.db.begin() as conn:
            for ref in refs:
                conn.execute(
                    job_tasks.update()
                    .where(job_tasks.c.job_id == ref.job_id, job_tasks.c.idx == ref.idx)
                    .values(published_at=None)
                )

    def claim_unpublished(self, *, older_than_s: float, limit: int = 500) -> list[TaskRef]:
        """Queued tasks never handed to the broker (their submitter died, or the broker
        was down), older than ``older_than_s``; each claimed by exactly one caller."""
        cutoff = _now() - timedelta(seconds=older_than_s)
        with self.db.begin() as conn:
            rows = conn.execute(
                sa.select(job_tasks.c.job_id, job_tasks.c.idx, job_tasks.c.queue, jobs.c.priority)
                .join(jobs, jobs.c.id == job_tasks.c.job_id)
                .where(
                    job_tasks.c.state == "queued",
                    job_tasks.c.published_at.is_(None),
                    job_tasks.c.created_at < cutoff,
                )
                .limit(limit)
            ).all()
        claimed = []
        for row in rows:
            with self.db.begin() as conn:
                hit = conn.execute(
                    job_tasks.update()
                    .where(
                        job_tasks.c.job_id == row.job_id,
                        job_tasks.c.idx == row.idx,
                        job_tasks.c.published_at.is_(None),
                    )
                    .values(published_at=_now())
                ).rowcount
            if hit:
                claimed.append(TaskRef(row.job_id, row.idx, row.queue, row.priority))
        return claimed

    def unfinished(self) -> list[TaskRef]:
        """Every queued or running task, for recovery by an in-process broker at start."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(job_tasks.c.job_id, job_tasks.c.idx, job_tasks.c.queue, jobs.c.priority)
                .join(jobs, jobs.c.id == job_tasks.c.job_id)
                .where(job_tasks.c.state.in_(ACTIVE))
                .order_by(job_tasks.c.job_id, job_tasks.c.idx)
            ).all()
        return [TaskRef(r.job_id, r.idx, r.queue, r.priority) for r in rows]

    # -- transitions --------------------------------------------------------------------
    def _lock_job(self, conn: Connection, job_id: str) -> JobRecord | None:
        # A write first: it takes the job's row lock on PostgreSQL and the write lock on
        # SQLite (whose driver only opens the transaction at the first DML statement),
        # so the read below cannot be stale when this transaction updates counters.
        row = conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(updated_at=jobs.c.updated_at)
            .returning(*jobs.c)
        ).first()
        return None if row is None else _job(row)

    def _event(
        self, conn: Connection, job_id: str, type_: str, data: dict[str, Any], at: datetime
    ) -> None:
        conn.execute(job_events.insert().values(job_id=job_id, type=type_, data=data, at=at))

    def start_task(self, job_id: str, idx: int) -> Started | None:
        """Move a task to ``running`` (from queued, or running after a redelivery) and
        count the attempt; ``None`` when it is finished already (a duplicate delivery)
        or unknown. The first start moves the job to ``running``."""
        now = _now()
        if self._pg:
            m = jobs_pg.run(
                self._lazy_pg(), jobs_pg.START, {"job_id": job_id, "idx": idx, "now": now}
            )
            if m is None:
                return None
            return Started(
                _job_of({c: m[f"j_{c}"] for c in jobs_pg.JOB_COLUMNS}),
                _task_of({c: m[f"t_{c}"] for c in jobs_pg.TASK_COLUMNS}),
            )
        with self._lazy() as conn:
            job = self._lock_job(conn, job_id)
            if job is None or job.terminal:
                return None
            row = conn.execute(
                job_tasks.update()
                .where(
                    job_tasks.c.job_id == job_id,
                    job_tasks.c.idx == idx,
                    job_tasks.c.state.in_(ACTIVE),
                )
                .values(
                    state="running",
                    attempts=job_tasks.c.attempts + 1,
                    started_at=sa.func.coalesce(job_tasks.c.started_at, now),
                )
                .returning(*job_tasks.c)
            ).first()
            if row is None:
                return None
            task = _task(row)
            if job.state == "queued":
                conn.execute(
                    jobs.update()
                    .where(jobs.c.id == job_id, jobs.c.state == "queued")
                    .values(state="running", started_at=now, updated_at=now)
                )
                self._event(conn, job_id, "state", {"state": "running"}, now)
            if task.attempts > 1:  # a retry or a redelivery is news; a first start is not
                self._event(
                    conn,
                    job_id,
                    "task",
                    {"index": idx, "state": "running", "attempt": task.attempts},
                    now,
                )
        return Started(job, task)

    def progress(self, job_id: str, idx: int, fraction: float, message: str | None) -> None:
        now = _now()
        with self._lazy() as conn:
            job = self._lock_job(conn, job_id)
            if job is None or job.terminal:
                return
            hit = conn.execute(
                job_tasks.update()
                .where(
                    job_tasks.c.job_id == job_id,
                    job_tasks.c.idx == idx,
                    job_tasks.c.state == "running",
                )
                .values(progress=fraction, message=message and message[:300])
            ).rowcount
            if hit:
                self._event(
                    conn,
                    job_id,
                    "progress",
                    {"index": idx, "progress": fraction, "message": message},
                    now,
                )

    def retry_later(self, job_id: str, idx: int, error: str) -> None:
        """A run failed in a way a retry may fix: back to ``queued`` with the reason."""
        now = _now()
        with self._lazy() as conn:
            job = self._lock_job(conn, job_id)
            if job is None or job.terminal:
                return
            hit = conn.execute(
                job_tasks.update()
                .where(
                    job_tasks.c.job_id == job_id,
                    job_tasks.c.idx == idx,
                    job_tasks.c.state == "running",
                )
                .values(state="queued", last_error=error[:4000])
            ).rowcount
            if hit:
                self._event(
                    conn,
                    job_id,
                    "task",
                    {"index": idx, "state": "retrying", "error": error[:500]},
                    now,
                )

    def finish_task(
        self,
        job_id: str,
        idx: int,
        outcome: Finish,
        *,
        aggregate: Callable[[JobRecord, list[TaskRecord]], Any] | None = None,
        started: Started | None = None,
    ) -> JobRecord | None:
        """Record a task's outcome; completes the job when it was the last task.

        Returns the job after the change, or ``None`` when the task was finished
        already (a duplicate run: nothing changes, exactly one outcome is visible).
        A task finishing after its job was cancelled is recorded as ``cancelled``.
        ``started``, the job and task as the caller knows them (only their fixed fields
        are used: the job's size, the task's index and input), lets PostgreSQL record
        the outcome of a one-task job, its completion included, in one statement.
        """
        now = _now()
        if self._pg:
            return self._finish_pg(job_id, idx, outcome, aggregate, started, now)
        with self.db.begin() as conn:
            job = self._lock_job(conn, job_id)
            if job is None:
                return None
            state = outcome.state
            if job.state == "cancelled" and state == "succeeded":
                state = "cancelled"
            hit = conn.execute(
                job_tasks.update()
                .where(
                    job_tasks.c.job_id == job_id,
                    job_tasks.c.idx == idx,
                    job_tasks.c.state.in_(outcome.from_states),
                )
                .values(
                    state=state,
                    progress=1.0 if state == "succeeded" else job_tasks.c.progress,
                    result_image=outcome.result_image,
                    artifacts=outcome.artifacts,
                    result=outcome.result,
                    error=outcome.error and outcome.error[:4000],
                    finished_at=now,
                )
            ).rowcount
            if not hit:
                return None
            counters = {
                "succeeded": job.succeeded + (state == "succeeded"),
                "failed": job.failed + (state == "failed"),
                "cancelled": job.cancelled + (state == "cancelled"),
            }
            values: dict[str, Any] = {"updated_at": now, **counters}
            event: dict[str, Any] = {"index": idx, "state": state}
            if outcome.result_image:
                event["result_image"] = outcome.result_image
            if outcome.error:
                event["error"] = outcome.error[:500]
            self._event(conn, job_id, "task", event, now)
            final: State | None = None
            if sum(counters.values()) >= job.total and job.state in ACTIVE:
                final = (
                    "succeeded" if counters["failed"] == counters["cancelled"] == 0 else "failed"
                )
                values.update(state=final, finished_at=now)
                tasks = [
                    _task(r)
                    for r in conn.execute(
                        sa.select(job_tasks)
                        .where(job_tasks.c.job_id == job_id)
                        .order_by(job_tasks.c.idx)
                    ).all()
                ]
                if final == "failed":
                    values["error"] = _failure_summary(tasks)
                if aggregate is not None:
                    values["result"] = aggregate(job, tasks)
            refreshed = conn.execute(
                jobs.update().where(jobs.c.id == job_id).values(**values).returning(*jobs.c)
            ).first()
            if final is not None:
                data: dict[str, Any] = {"state": final}
                if final == "failed":
                    data["error"] = values["error"]
                self._event(conn, job_id, "state", data, now)
        return _job(refreshed)

    def _finish_pg(
        self,
        job_id: str,
        idx: int,
        outcome: Finish,
        aggregate: Callable[[JobRecord, list[TaskRecord]], Any] | None,
        started: Started | None,
        now: datetime,
    ) -> JobRecord | None:
        error = outcome.error and outcome.error[:4000]
        params: dict[str, Any] = {
            "job_id": job_id,
            "idx": idx,
            "state": outcome.state,
            "from_states": _json(list(outcome.from_states)),
            "result_image": outcome.result_image,
            "artifacts": _json(outcome.artifacts),
            "result": _json(outcome.result),
            "error": error,
            "now": now,
            "event_image": outcome.result_image or None,
            "event_error": outcome.error[:500] if outcome.error else None,
            "finalise": False,
            "final_result": None,
            "final_error": None,
        }
        if started is not None and started.job.total == 1:
            # the job's only task: its result and error are known before the statement
            done = replace(
                started.task,
                state=outcome.state,
                result=outcome.result,
                result_image=outcome.result_image,
                artifacts=outcome.artifacts,
                error=error,
                finished_at=now,
            )
            params["finalise"] = True
            if aggregate is not None:
                params["final_result"] = _json(aggregate(started.job, [done]))
            if outcome.state != "succeeded":
                params["final_error"] = _failure_summary([done])
            done_job = jobs_pg.run(self.db.engine, jobs_pg.FINISH, params)
            return None if done_job is None else _job_of(done_job)
        # a larger job: count this task, then complete the job in the same transaction

        def count_and_complete(conn: Any) -> JobRecord | None:
            row = jobs_pg.one(conn, jobs_pg.FINISH, params)
            if row is None:
                return None
            job = _job_of(row)
            if job.done < job.total or job.state not in ACTIVE:
                return job
            final: State = "succeeded" if job.failed == job.cancelled == 0 else "failed"
            tasks = [_task_of(r) for r in jobs_pg.rows(conn, jobs_pg.TASKS, {"job_id": job_id})]
            event: dict[str, Any] = {"state": final}
            if final == "failed":
                event["error"] = _failure_summary(tasks)
            done = jobs_pg.one(
                conn,
                jobs_pg.COMPLETE,
                {
                    "job_id": job_id,
                    "state": final,
                    "now": now,
                    "error": event.get("error"),
                    "result": _json(aggregate(job, tasks)) if aggregate is not None else None,
                    "event": _json(event),
                },
            )
            assert done is not None  # the row is locked by this transaction
            return _job_of(done)

        return jobs_pg.session(self.db.engine, count_and_complete, transaction=True)

    def cancel(self, job_id: str, *, owner: str | None = None) -> tuple[JobRecord, bool]:
        """Cancel a queued or running job: queued tasks are cancelled at once, running
        ones stop at their next check. Returns ``(job, changed)``; cancelling a finished
        job changes nothing. With ``owner``, another key's job is ``NotFound``."""
        now = _now()
        with self.db.begin() as conn:
            job = self._lock_job(conn, job_id)
            if job is None or (owner is not None and job.owner != owner):
                raise NotFound(f"no job {job_id!r}")
            if job.terminal:
                return job, False
            dropped = conn.execute(
                job_tasks.update()
                .where(job_tasks.c.job_id == job_id, job_tasks.c.state == "queued")
                .values(state="cancelled", finished_at=now)
            ).rowcount
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.state.in_(ACTIVE))
                .values(
                    state="cancelled",
                    cancelled=jobs.c.cancelled + dropped,
                    finished_at=now,
                    updated_at=now,
                )
            )
            self._event(conn, job_id, "state", {"state": "cancelled"}, now)
        return self.get(job_id), True

    # -- retention ----------------------------------------------------------------------
    def count_finished(self, *, before: datetime) -> int:
        """Jobs that finished (succeeded, failed, cancelled) before ``before``."""
        with self.db.read() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(jobs)
                    .where(jobs.c.state.in_(TERMINAL), jobs.c.finished_at < before)
                ).scalar_one()
            )

    def purge_finished(self, *, before: datetime, limit: int) -> list[PurgedJob]:
        """Delete up to ``limit`` jobs that finished before ``before`` — oldest first,
        with their tasks and events — in one transaction. Returns the deleted jobs with
        the storage keys of their artifacts, for the caller to delete *after* this commit
        (a leftover object is harmless; a row naming a deleted object is not).

        Safe to run in several processes at once: on PostgreSQL each caller locks its
        batch (``FOR UPDATE SKIP LOCKED``, so concurrent callers take different jobs and
        a job's transitions, which lock its row first, wait or find it gone); on SQLite
        writers take turns and a job deleted by another caller is simply not returned.
        """
        with self.db.begin() as conn:
            query = (
                sa.select(jobs.c.id)
                .where(jobs.c.state.in_(TERMINAL), jobs.c.finished_at < before)
                .order_by(jobs.c.finished_at)
                .limit(limit)
            )
            if self._pg:
                query = query.with_for_update(skip_locked=True)
            ids = list(conn.execute(query).scalars())
            if not ids:
                return []
            # the tasks' artifact descriptors as they are deleted (SQLite: this first
            # write takes the lock, so they cannot change before the commit)
            keys: dict[str, list[str]] = {}
            for job_id, described in conn.execute(
                job_tasks.delete()
                .where(job_tasks.c.job_id.in_(ids))
                .returning(job_tasks.c.job_id, job_tasks.c.artifacts)
            ).all():
                keys.setdefault(job_id, []).extend(
                    a["key"] for a in described or () if isinstance(a, dict) and a.get("key")
                )
            conn.execute(job_events.delete().where(job_events.c.job_id.in_(ids)))
            deleted = conn.execute(
                jobs.delete()
                .where(jobs.c.id.in_(ids), jobs.c.state.in_(TERMINAL))
                .returning(jobs.c.id)
            ).scalars()
            return [PurgedJob(job_id, keys.get(job_id, [])) for job_id in deleted]


def _failure_summary(tasks: Sequence[TaskRecord]) -> str:
    failed = [t for t in tasks if t.state == "failed"]
    cancelled = sum(t.state == "cancelled" for t in tasks)
    parts = []
    if failed:
        first = failed[0]
        where = f"input {first.input}" if first.input else f"task {first.idx}"
        parts.append(f"{len(failed)} of {len(tasks)} tasks failed; first ({where}): {first.error}")
    if cancelled:
        parts.append(f"{cancelled} of {len(tasks)} tasks cancelled")
    return "; ".join(parts)
