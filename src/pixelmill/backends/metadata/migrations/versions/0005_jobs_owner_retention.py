"""jobs: indexes for per-key scoping (owner) and retention (finished_at)

The ``owner`` column itself exists since 0002 (the submitting key's id, ``''`` for a
job submitted without a key): ``NOT NULL`` on purpose, because the unique
``(owner, idempotency_key)`` constraint must also hold for unowned jobs (NULLs would
never collide). Rows from before this revision keep their owner as recorded; unowned
ones are visible to admin keys only.

Revision ID: 0005_jobs_owner_retention
Revises: 0004_analysis
"""

from __future__ import annotations

from alembic import op

revision = "0005_jobs_owner_retention"
down_revision = "0004_analysis"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a non-admin key's listing: WHERE owner = ? ORDER BY id DESC, cursor on id
    op.create_index("ix_jobs_owner_id", "jobs", ["owner", "id"])
    # the retention sweep: finished jobs in order of finished_at (NULL while active)
    op.create_index("ix_jobs_finished_at", "jobs", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_finished_at", "jobs")
    op.drop_index("ix_jobs_owner_id", "jobs")
