"""Timings of finished job tasks, for the autoscaling trace recorder
(``pixelmill autoscale record``): when each task was queued, its job's kind, and how
long a worker ran it."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.backends.metadata._time import utc
from pixelmill.backends.metadata.tables_jobs import job_tasks, jobs

__all__ = ["recent_tasks", "task_timings"]


def task_timings(
    connection: Connection, since: datetime | None = None
) -> list[tuple[float, str, float]]:
    """``(queued at, unix s; job kind; run time, s)`` of every task that succeeded,
    oldest first. Failed and cancelled tasks are left out: a replay sizes from these run
    times, and a task that failed at once on a bad input says nothing about how long the
    work takes."""
    query = (
        sa.select(
            job_tasks.c.created_at, jobs.c.kind, job_tasks.c.started_at, job_tasks.c.finished_at
        )
        .join(jobs, jobs.c.id == job_tasks.c.job_id)
        .where(
            job_tasks.c.state == "succeeded",
            job_tasks.c.started_at.is_not(None),
            job_tasks.c.finished_at.is_not(None),
        )
        .order_by(job_tasks.c.created_at)
    )
    if since is not None:
        query = query.where(job_tasks.c.created_at >= since.replace(tzinfo=since.tzinfo or UTC))
    return [
        (
            utc(created).timestamp(),
            kind,
            max(0.0, (utc(finished) - utc(started)).total_seconds()),
        )
        for created, kind, started, finished in connection.execute(query)
    ]


def recent_tasks(
    connection: Connection, since: datetime, limit: int = 20000
) -> list[tuple[str, float, float | None, float | None, str]]:
    """``(queue, created, started, finished, state)`` (unix s; ``None`` not yet) of the
    tasks created or finished at or after ``since``, newest first: the autoscaler's
    arrival rate (every task) and service time (the tasks that succeeded)."""
    c = job_tasks.c
    since = since.replace(tzinfo=since.tzinfo or UTC)
    query = (
        sa.select(c.queue, c.created_at, c.started_at, c.finished_at, c.state)
        .where(sa.or_(c.created_at >= since, c.finished_at >= since))
        .order_by(c.created_at.desc())
        .limit(limit)
    )

    def stamp(value: datetime | None) -> float | None:
        return None if value is None else utc(value).timestamp()

    return [
        (queue, utc(created).timestamp(), stamp(started), stamp(finished), state)
        for queue, created, started, finished, state in connection.execute(query)
    ]
