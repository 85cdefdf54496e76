"""jobs, tasks and job events (owned by the async jobs work)

Revision ID: 0002_jobs
Revises: 0001_images_keys
"""

from __future__ import annotations

revision = "0002_jobs"
down_revision = "0001_images_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
