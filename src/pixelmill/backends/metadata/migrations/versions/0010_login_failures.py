"""failed logins per submitted username (known or not): lockouts reveal no usernames

Revision ID: 0010_login_failures
Revises: 0009_model_evaluations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_login_failures"
down_revision = "0009_model_evaluations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failures_last_failed_at", "login_failures", ["last_failed_at"])
    # failures counted on users so far carry over (a lock in force stays)
    op.execute(
        sa.text(
            "INSERT INTO login_failures (name, failures, locked_until, last_failed_at) "
            "SELECT username, failed_logins, locked_until, CURRENT_TIMESTAMP FROM users "
            "WHERE failed_logins > 0"
        )
    )


def downgrade() -> None:
    op.drop_index("ix_login_failures_last_failed_at", "login_failures")
    op.drop_table("login_failures")
