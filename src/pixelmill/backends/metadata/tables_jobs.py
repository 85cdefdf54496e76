"""Tables of the async job system: jobs, their tasks, and their event log.

The DB is the durable record of every job: the broker only carries ``(job, task)``
ids, so a lost broker message can be re-published from here, and every state change
is a guarded ``UPDATE ... WHERE state IN (...)`` so redelivered work cannot move a
job backwards or finish it twice.
"""

from __future__ import annotations

import sqlalchemy as sa

from pixelmill.backends.metadata.tables import metadata

#: autoincrement ids: BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("queue", sa.String(16), nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),
    #: id of the API key that submitted the job; '' when submitted without one
    sa.Column("owner", sa.String(32), nullable=False, server_default=""),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("succeeded", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cancelled", sa.Integer, nullable=False, server_default="0"),
    sa.Column("time_limit_s", sa.Float, nullable=False),
    sa.Column("max_retries", sa.Integer, nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
    sa.Index("ix_jobs_state_id", "state", "id"),
    sa.Index("ix_jobs_owner_id", "owner", "id"),
    # the concurrent-jobs quota counts one owner's queued and running jobs (0008)
    sa.Index("ix_jobs_owner_state", "owner", "state"),
    sa.Index("ix_jobs_finished_at", "finished_at"),
)

job_tasks = sa.Table(
    "job_tasks",
    metadata,
    sa.Column(
        "job_id",
        sa.String(32),
        sa.ForeignKey("jobs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("queue", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("input", sa.String(64), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("progress", sa.Float, nullable=False, server_default="0"),
    sa.Column("message", sa.String(300), nullable=True),
    sa.Column("result_image", sa.String(64), nullable=True),
    sa.Column("artifacts", sa.JSON, nullable=True),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_job_tasks_state_queue", "state", "queue"),
)

job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_job_events_job_id_id", "job_id", "id"),
)
