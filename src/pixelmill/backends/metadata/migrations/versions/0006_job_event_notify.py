"""jobs: NOTIFY pixelmill_job_events on every new job event (PostgreSQL only)

Event streams (``GET /v1/jobs/{id}/events``) wake on these notifications instead of
polling (:mod:`pixelmill.backends.metadata.changes`). A trigger rather than code in the
repository: every writer of ``job_events`` — ORM paths, the raw psycopg fast paths,
another version's workers — notifies alike, inside its own transaction, so a
notification is sent exactly when the event commits. The payload is the job id; within
one transaction PostgreSQL sends identical notifications once. SQLite has no NOTIFY:
embedded streams keep polling.

Revision ID: 0006_job_event_notify
Revises: 0005_jobs_owner_retention
"""

from __future__ import annotations

from alembic import op

revision = "0006_job_event_notify"
down_revision = "0005_jobs_owner_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION pixelmill_job_event_notify() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('pixelmill_job_events', NEW.job_id);
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER job_events_notify AFTER INSERT ON job_events "
        "FOR EACH ROW EXECUTE FUNCTION pixelmill_job_event_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS job_events_notify ON job_events")
    op.execute("DROP FUNCTION IF EXISTS pixelmill_job_event_notify()")
