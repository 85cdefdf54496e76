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


def _has_column() -> bool:
    columns = sa.inspect(op.get_bind()).get_columns("events")
    return any(c["name"] == "request_id" for c in columns)


def upgrade() -> None:
    # 0007 creates ``events`` from the current table definition: a new database has it
    if not _has_column():
        with op.batch_alter_table("events") as batch:
            batch.add_column(sa.Column("request_id", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("request_id")
