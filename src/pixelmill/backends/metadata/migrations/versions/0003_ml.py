"""datasets, models, versions, aliases, audit (owned by the ML work)

Revision ID: 0003_ml
Revises: 0002_jobs
"""

from __future__ import annotations

revision = "0003_ml"
down_revision = "0002_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
