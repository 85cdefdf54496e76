"""analysis tables, if any (owned by the analysis work)

Revision ID: 0004_analysis
Revises: 0003_ml
"""

from __future__ import annotations

revision = "0004_analysis"
down_revision = "0003_ml"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
