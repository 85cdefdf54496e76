"""The job store on SQL: SQLite (embedded) and PostgreSQL (distributed), one code path
for both but the hot statements, which PostgreSQL runs as one prepared statement each
(:mod:`~pixelmill.backends.metadata.jobs.pg_statements`).

This module holds creation, reads, publishing marks and retention; the state
transitions are :mod:`~pixelmill.backends.metadata.jobs.sql_transitions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from pixelmill.backends.metadata._time import now as _now
from pixelmill.backends.metadata._time import utc
from pixelmill.backends.metadata.jobs import pg_statements as stmt
from pixelmill.backends.metadata.jobs._sql_common import (
    event_row,
    job_row,
    new_job,
    task_row,
    to_json,
)
from pixelmill.backends.metadata.jobs.base import (
    EventRecord,
    JobRecord,
    PurgedJob,
    TaskRecord,
    TaskRef,
)
from pixelmill.backends.metadata.jobs.sql_transitions import SqlTransitions
from pixelmill.backends.metadata.jobs.states import ACTIVE, TERMINAL
from pixelmill.backends.metadata.tables_jobs import job_events, job_tasks, jobs
from pixelmill.backends.metadata.tables_workspace import analyses
from pixelmill.errors import BackendUnavailable, NotFound


class JobRepository(SqlTransitions):
    """The :class:`~pixelmill.backends.metadata.jobs.base.JobStore` over a migrated
    metadata :class:`~pixelmill.backends.metadata.database.Database`."""

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
                conn.execute(jobs.insert(), row)
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
        return new_job(row), True

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
            "params": to_json(row["params"]),
            "inputs": to_json(row["inputs"]),
            "owner": row.get("owner", ""),
            "idempotency_key": row.get("idempotency_key"),
            "request_hash": row.get("request_hash"),
            "total": row["total"],
            "time_limit_s": float(row["time_limit_s"]),
            "max_retries": row["max_retries"],
            "now": now,
            "check": to_json(list(images)),
            "n_check": len(images),
            "tasks": to_json([{"idx": idx, "input": image} for idx, image in tasks]),
        }
        if self._grouped().run(stmt.CREATE, params) is not None:
            return new_job(row), True
        # nothing inserted: an image is missing, the idempotency key is taken — or the
        # first attempt did commit and only its answer was lost (then the id exists)
        with self.db.read() as conn:
            self.check_images(conn, images)
            if conn.execute(sa.select(jobs.c.id).where(jobs.c.id == row["id"])).first():
                return new_job(row), True
        existing = self._idempotent_twin(row)
        if existing is None:
            raise BackendUnavailable(f"job {row['id']} could not be stored")
        return existing, False

    def _idempotent_twin(self, row: dict[str, Any]) -> JobRecord | None:
        key = row.get("idempotency_key")
        return self.find_by_idempotency_key(row.get("owner", ""), key) if key else None

    def find_by_idempotency_key(self, owner: str, key: str) -> JobRecord | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(jobs).where(jobs.c.owner == owner, jobs.c.idempotency_key == key)
            ).first()
        return None if row is None else job_row(row)

    def tasks(self, job_id: str) -> list[TaskRecord]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(job_tasks).where(job_tasks.c.job_id == job_id).order_by(job_tasks.c.idx)
            ).all()
        return [task_row(r) for r in rows]

    def task(self, job_id: str, idx: int) -> TaskRecord:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(job_tasks).where(job_tasks.c.job_id == job_id, job_tasks.c.idx == idx)
            ).first()
        if row is None:
            raise NotFound(f"job {job_id!r} has no task {idx}")
        return task_row(row)

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
            return [job_row(r) for r in conn.execute(query).all()]

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

    def queue_stats(self) -> list[tuple[str, str, int, datetime | None]]:
        query = (
            sa.select(
                job_tasks.c.queue,
                job_tasks.c.state,
                sa.func.count(),
                sa.func.min(job_tasks.c.created_at),
            )
            .where(job_tasks.c.state.in_(("queued", "running")))
            .group_by(job_tasks.c.queue, job_tasks.c.state)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [(q, s, int(n), utc(oldest)) for q, s, n, oldest in rows]

    def events(self, job_id: str, *, after: int = 0, limit: int = 500) -> list[EventRecord]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(job_events)
                .where(job_events.c.job_id == job_id, job_events.c.id > after)
                .order_by(job_events.c.id)
                .limit(limit)
            ).all()
        return [event_row(r) for r in rows]

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

    # -- retention ----------------------------------------------------------------------
    def count_finished(self, *, before: datetime) -> int:
        """Jobs that finished (succeeded, failed, cancelled) before ``before`` and that
        retention may delete (no study analysis holds them: :func:`_expired`)."""
        with self.db.read() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(jobs).where(*_expired(before))
                ).scalar_one()
            )

    def purge_finished(self, *, before: datetime, limit: int) -> list[PurgedJob]:
        """Delete up to ``limit`` jobs that finished before ``before`` — oldest first,
        with their tasks and events — in one transaction. Returns the deleted jobs with
        the storage keys of their artifacts, for the caller to delete *after* this commit
        (a leftover object is harmless; a row naming a deleted object is not).

        A job a study analysis refers to is kept (:func:`_expired`): its artifacts are
        the analysis's results; it goes with the analysis (deleting the study).

        Safe to run in several processes at once: on PostgreSQL each caller locks its
        batch (``FOR UPDATE SKIP LOCKED``, so concurrent callers take different jobs and
        a job's transitions, which lock its row first, wait or find it gone); on SQLite
        writers take turns and a job deleted by another caller is simply not returned.
        """
        with self.db.begin() as conn:
            query = (
                sa.select(jobs.c.id)
                .where(*_expired(before))
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


def _expired(before: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    """The jobs retention deletes: finished before ``before``, and referred to by no
    study analysis (an analysis's results are its job's artifacts, study data that
    outlive the job queue's retention, as in OMERO or QuPath; the job is released when
    the analysis goes, with its study)."""
    held = sa.exists().where(analyses.c.job_id == jobs.c.id)
    return jobs.c.state.in_(TERMINAL), jobs.c.finished_at < before, ~held
