"""model evaluations (scores of a version on a dataset) and promotion gates

Revision ID: 0009_model_evaluations
Revises: 0008_quotas
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_model_evaluations"
down_revision = "0008_quotas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ml_model_evaluations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("dataset_id", sa.String(32), nullable=False),
        sa.Column("dataset_sha256", sa.String(64), nullable=False),
        sa.Column("dataset_name", sa.String(200), nullable=False),
        sa.Column("split", sa.String(16), nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_ml_model_evaluations_model_version", "ml_model_evaluations", ["model", "version"]
    )
    op.create_table(
        "ml_model_gates",
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("dataset_id", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model"], ["ml_models.name"], name="fk_ml_model_gates_model_ml_models"
        ),
    )


def downgrade() -> None:
    op.drop_table("ml_model_gates")
    op.drop_index("ix_ml_model_evaluations_model_version", "ml_model_evaluations")
    op.drop_table("ml_model_evaluations")
