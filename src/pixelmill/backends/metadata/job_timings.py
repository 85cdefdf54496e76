"""Timings of finished job tasks, for the autoscaling trace recorder
(``pixelmill autoscale record``): when each task was queued, its job's kind, and how
long a worker ran it."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pixelmill.backends.metadata._time import utc
from pixelmill.backends.metadata.tables_jobs import job_tasks, jobs

__all__ = ["task_timings"]


def task_timings(
    connection: Connection, since: datetime | None = None
) -> list[tuple[float, str, float]]:
    """``(queued at, unix s; job kind; run time, s)`` of every task that ran to its end,
    oldest first."""
    query = (
        sa.select(
            job_tasks.c.created_at, jobs.c.kind, job_tasks.c.started_at, job_tasks.c.finished_at
        )
        .join(jobs, jobs.c.id == job_tasks.c.job_id)
        .where(job_tasks.c.started_at.is_not(None), job_tasks.c.finished_at.is_not(None))
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
