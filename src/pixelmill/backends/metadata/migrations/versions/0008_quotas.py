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
    tq.user_usage.create(bind)
    # every owner's stored bytes so far (images, datasets and model versions)
    op.execute(
        """
        INSERT INTO user_usage (user_id, stored_bytes)
        SELECT owner, SUM(size) FROM (
            SELECT owner_id AS owner, size_bytes AS size FROM images
            UNION ALL SELECT created_by, size_bytes FROM ml_datasets
            UNION ALL SELECT created_by, size_bytes FROM ml_model_versions
        ) AS stored
        WHERE owner IS NOT NULL AND owner <> ''
        GROUP BY owner
        """
    )
    # the concurrent-jobs quota counts a user's queued and running jobs at each submit
    op.create_index("ix_jobs_owner_state", "jobs", ["owner", "state"])


def downgrade() -> None:
    op.drop_index("ix_jobs_owner_state", table_name="jobs")
    bind = op.get_bind()
    tq.user_usage.drop(bind)
    tq.training_usage.drop(bind)
    tq.user_quotas.drop(bind)
