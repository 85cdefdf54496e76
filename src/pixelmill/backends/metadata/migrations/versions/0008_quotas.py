"""quotas: per-user quota overrides, training minutes per run, and an index for counting
a user's active jobs

Revision ID: 0008_quotas
Revises: 0007_workspace
"""

from __future__ import annotations

from alembic import op

from pixelmill.backends.metadata import tables_quotas as tq

revision = "0008_quotas"
down_revision = "0007_workspace"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    tq.user_quotas.create(bind)
    tq.training_usage.create(bind)
    # the concurrent-jobs quota counts a user's queued and running jobs at each submit
    op.create_index("ix_jobs_owner_state", "jobs", ["owner", "state"])


def downgrade() -> None:
    op.drop_index("ix_jobs_owner_state", table_name="jobs")
    bind = op.get_bind()
    tq.training_usage.drop(bind)
    tq.user_quotas.drop(bind)
