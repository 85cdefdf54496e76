"""events name the HTTP request that made them (``request_id``, the ``X-Request-ID``
the gateway answered with), so an audit row leads to the request's log lines

Revision ID: 0011_event_request_id
Revises: 0010_login_failures
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_event_request_id"
down_revision = "0010_login_failures"
branch_labels = None
depends_on = None


INDEX = "ix_events_request_id"


def _has_column() -> bool:
    columns = sa.inspect(op.get_bind()).get_columns("events")
    return any(c["name"] == "request_id" for c in columns)


def _has_index() -> bool:
    return any(i["name"] == INDEX for i in sa.inspect(op.get_bind()).get_indexes("events"))


def upgrade() -> None:
    # 0007 creates ``events`` from the current table definition: a new database has both
    if not _has_column():
        with op.batch_alter_table("events") as batch:
            batch.add_column(sa.Column("request_id", sa.String(128), nullable=True))
    if not _has_index():  # the audit page's "this request's events"
        op.create_index(INDEX, "events", ["request_id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("request_id")
