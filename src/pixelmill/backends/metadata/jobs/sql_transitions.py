"""The SQL job store's state transitions: start, progress, retry, finish, cancel.

Every transition is an ``UPDATE ... WHERE state IN (...)`` — the sources that
:mod:`~pixelmill.backends.metadata.jobs.states` allows — inside one transaction that
first locks the job row, so

* a redelivered task cannot finish twice (the second ``running → succeeded`` matches
  no row and is reported as a duplicate);
* a job moves to a terminal state exactly once, by whichever task completes it;
* a job's events get ids in commit order (the job row lock serialises them), so a
  reader polling ``id > last`` never skips one.

On PostgreSQL the hot transitions (start, finish) run as one statement each
(:mod:`~pixelmill.backends.metadata.jobs.pg_statements`) with the same guards; SQLite
runs the portable transactions below.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.backends.metadata import pg_prepared
from pixelmill.backends.metadata._time import now as _now
from pixelmill.backends.metadata.jobs import pg_statements as stmt
from pixelmill.backends.metadata.jobs._sql_common import (
    SqlStoreBase,
    job_of,
    job_row,
    task_of,
    task_row,
    to_json,
)
from pixelmill.backends.metadata.jobs.base import (
    Aggregate,
    Finish,
    JobRecord,
    Started,
    failure_summary,
)
from pixelmill.backends.metadata.jobs.states import State, can_move, job_outcome, sources
from pixelmill.backends.metadata.tables_jobs import job_tasks, jobs
from pixelmill.errors import NotFound

# The hot transitions' statements, built once with bound parameters (``b_*``: a
# column's own name is reserved for its SET value): built per call, SQLAlchemy's
# construction and cache-key walk cost about as much as SQLite's work (docs/benchmarks.md,
# "Storing a mask, made cheaper"). PostgreSQL runs its own prepared statements instead.
_START_TASK = (
    job_tasks.update()
    .where(
        job_tasks.c.job_id == sa.bindparam("b_job_id"),
        job_tasks.c.idx == sa.bindparam("b_idx"),
        job_tasks.c.state.in_(sources("task", "running")),
    )
    .values(
        state="running",
        attempts=job_tasks.c.attempts + 1,
        started_at=sa.func.coalesce(
            job_tasks.c.started_at, sa.bindparam("b_now", type_=job_tasks.c.started_at.type)
        ),
    )
    .returning(*job_tasks.c)
)
_START_JOB = (
    jobs.update()
    .where(jobs.c.id == sa.bindparam("b_job_id"), jobs.c.state.in_(sources("job", "running")))
    .values(state="running", started_at=sa.bindparam("b_now"), updated_at=sa.bindparam("b_now"))
)
#: the counters and, when the job completes, its outcome: which columns are set varies,
#: so they are the parameters' column-named keys (SQLAlchemy's SET from the parameters)
_UPDATE_JOB = jobs.update().where(jobs.c.id == sa.bindparam("b_job_id")).returning(*jobs.c)
_TASKS_OF = (
    sa.select(job_tasks)
    .where(job_tasks.c.job_id == sa.bindparam("b_job_id"))
    .order_by(job_tasks.c.idx)
)


@functools.cache
def _finish_task(from_states: tuple[str, ...], succeeded: bool) -> Any:
    """A task's outcome, guarded by ``from_states`` (one statement per guard and per
    succeeded or not: a success sets the progress to 1)."""
    return (
        job_tasks.update()
        .where(
            job_tasks.c.job_id == sa.bindparam("b_job_id"),
            job_tasks.c.idx == sa.bindparam("b_idx"),
            job_tasks.c.state.in_(from_states),
        )
        .values(
            state=sa.bindparam("b_state"),
            progress=1.0 if succeeded else job_tasks.c.progress,
            result_image=sa.bindparam("b_result_image"),
            artifacts=sa.bindparam("b_artifacts"),
            result=sa.bindparam("b_result"),
            error=sa.bindparam("b_error"),
            finished_at=sa.bindparam("b_now"),
        )
    )


class SqlTransitions(SqlStoreBase):
    def start_task(self, job_id: str, idx: int) -> Started | None:
        """Move a task to ``running`` (from queued, or running after a redelivery) and
        count the attempt; ``None`` when it is finished already (a duplicate delivery)
        or unknown. The first start moves the job to ``running``."""
        now = _now()
        if self._pg:
            params = {"job_id": job_id, "idx": idx, "now": now}
            m = self._grouped(lazy=True).run(stmt.START, params)
            if m is None:
                return None
            return Started(
                job_of({c: m[f"j_{c}"] for c in stmt.JOB_COLUMNS}),
                task_of({c: m[f"t_{c}"] for c in stmt.TASK_COLUMNS}),
            )
        with self._lazy() as conn:
            job = self._lock_job(conn, job_id)
            if job is None or job.terminal:
                return None
            row = conn.execute(
                _START_TASK, {"b_job_id": job_id, "b_idx": idx, "b_now": now}
            ).first()
            if row is None:
                return None
            task = task_row(row)
            if can_move("job", job.state, "running"):
                conn.execute(_START_JOB, {"b_job_id": job_id, "b_now": now})
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
        self._update_live_task(
            job_id,
            idx,
            ("running",),
            {"progress": fraction, "message": message and message[:300]},
            ("progress", {"index": idx, "progress": fraction, "message": message}),
        )

    def retry_later(self, job_id: str, idx: int, error: str) -> None:
        """A run failed in a way a retry may fix: back to ``queued`` with the reason."""
        self._update_live_task(
            job_id,
            idx,
            sources("task", "queued"),
            {"state": "queued", "last_error": error[:4000]},
            ("task", {"index": idx, "state": "retrying", "error": error[:500]}),
        )

    def _update_live_task(
        self,
        job_id: str,
        idx: int,
        from_states: Sequence[str],
        values: dict[str, Any],
        event: tuple[str, dict[str, Any]],
    ) -> None:
        """Update a task of a live job when it is in one of ``from_states``, under the
        job's lock, and record ``event`` (type, data) when it was."""
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
                    job_tasks.c.state.in_(from_states),
                )
                .values(**values)
            ).rowcount
            if hit:
                self._event(conn, job_id, event[0], event[1], now)

    def finish_task(
        self,
        job_id: str,
        idx: int,
        outcome: Finish,
        *,
        aggregate: Aggregate | None = None,
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
        from_states = outcome.sources()
        if not from_states:
            return None
        if self._pg:
            return self._finish_pg(job_id, idx, outcome, from_states, aggregate, started, now)
        with self.db.begin() as conn:
            job = self._lock_job(conn, job_id)
            if job is None:
                return None
            state = outcome.state
            if job.state == "cancelled" and state == "succeeded":
                state = "cancelled"
            hit = conn.execute(
                _finish_task(from_states, state == "succeeded"),
                {
                    "b_job_id": job_id,
                    "b_idx": idx,
                    "b_state": state,
                    "b_result_image": outcome.result_image,
                    "b_artifacts": outcome.artifacts,
                    "b_result": outcome.result,
                    "b_error": outcome.error and outcome.error[:4000],
                    "b_now": now,
                },
            ).rowcount
            if not hit:
                return None
            event: dict[str, Any] = {"index": idx, "state": state}
            if outcome.result_image:
                event["result_image"] = outcome.result_image
            if outcome.error:
                event["error"] = outcome.error[:500]
            self._event(conn, job_id, "task", event, now)
            return self._count(conn, job, state, aggregate, now)

    def _count(
        self,
        conn: Connection,
        job: JobRecord,
        state: State,
        aggregate: Aggregate | None,
        now: datetime,
    ) -> JobRecord:
        """Count one finished task (in ``state``) on its locked job and complete the
        job when that was its last task."""
        counters = {
            "succeeded": job.succeeded + (state == "succeeded"),
            "failed": job.failed + (state == "failed"),
            "cancelled": job.cancelled + (state == "cancelled"),
        }
        values: dict[str, Any] = {"updated_at": now, **counters}
        final = job_outcome(counters["failed"], counters["cancelled"])
        done = sum(counters.values()) >= job.total and can_move("job", job.state, final)
        if done:
            values.update(state=final, finished_at=now)
            tasks = [task_row(r) for r in conn.execute(_TASKS_OF, {"b_job_id": job.id}).all()]
            if final == "failed":
                values["error"] = failure_summary(tasks)
            if aggregate is not None:
                values["result"] = aggregate(job, tasks)
        refreshed = conn.execute(_UPDATE_JOB, {"b_job_id": job.id, **values}).first()
        if done:
            data: dict[str, Any] = {"state": final}
            if final == "failed":
                data["error"] = values["error"]
            self._event(conn, job.id, "state", data, now)
        return job_row(refreshed)

    def _finish_pg(
        self,
        job_id: str,
        idx: int,
        outcome: Finish,
        from_states: tuple[State, ...],
        aggregate: Aggregate | None,
        started: Started | None,
        now: datetime,
    ) -> JobRecord | None:
        error = outcome.error and outcome.error[:4000]
        params: dict[str, Any] = {
            "job_id": job_id,
            "idx": idx,
            "state": outcome.state,
            "from_states": to_json(list(from_states)),
            "result_image": outcome.result_image,
            "artifacts": to_json(outcome.artifacts),
            "result": to_json(outcome.result),
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
                params["final_result"] = to_json(aggregate(started.job, [done]))
            if outcome.state != "succeeded":
                params["final_error"] = failure_summary([done])
            done_job = self._grouped().run(stmt.FINISH, params)
            return None if done_job is None else job_of(done_job)
        # a larger job: count this task, then complete the job in the same transaction

        def count_and_complete(conn: Any) -> JobRecord | None:
            row = pg_prepared.one(conn, stmt.FINISH, params)
            if row is None:
                return None
            job = job_of(row)
            final = job_outcome(job.failed, job.cancelled)
            if job.done < job.total or not can_move("job", job.state, final):
                return job
            tasks = [task_of(r) for r in pg_prepared.rows(conn, stmt.TASKS, {"job_id": job_id})]
            event: dict[str, Any] = {"state": final}
            if final == "failed":
                event["error"] = failure_summary(tasks)
            done = pg_prepared.one(
                conn,
                stmt.COMPLETE,
                {
                    "job_id": job_id,
                    "state": final,
                    "now": now,
                    "error": event.get("error"),
                    "result": to_json(aggregate(job, tasks)) if aggregate is not None else None,
                    "event": to_json(event),
                },
            )
            assert done is not None  # the row is locked by this transaction
            return job_of(done)

        return pg_prepared.session(self.db.engine, count_and_complete, transaction=True)

    def cancel(self, job_id: str, *, owner: str | None = None) -> tuple[JobRecord, bool]:
        """Cancel a queued or running job: every task still queued or running is
        cancelled at once (running ones stop at their next check; their late outcome
        or redelivery then matches no row), each with its ``task`` event, so the job is
        final with its counts and its last event. Returns ``(job, changed)``; cancelling
        a finished job changes nothing. With ``owner``, another key's job is
        ``NotFound``."""
        now = _now()
        with self.db.begin() as conn:
            job = self._lock_job(conn, job_id)
            if job is None or (owner is not None and job.owner != owner):
                raise NotFound(f"no job {job_id!r}")
            if not can_move("job", job.state, "cancelled"):
                return job, False
            dropped = sorted(
                conn.execute(
                    job_tasks.update()
                    .where(
                        job_tasks.c.job_id == job_id,
                        job_tasks.c.state.in_(sources("task", "cancelled")),
                    )
                    .values(state="cancelled", finished_at=now)
                    .returning(job_tasks.c.idx)
                ).scalars()
            )
            for idx in dropped:
                self._event(conn, job_id, "task", {"index": idx, "state": "cancelled"}, now)
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.state.in_(sources("job", "cancelled")))
                .values(
                    state="cancelled",
                    cancelled=jobs.c.cancelled + len(dropped),
                    finished_at=now,
                    updated_at=now,
                )
            )
            self._event(conn, job_id, "state", {"state": "cancelled"}, now)
        return self.get(job_id), True
