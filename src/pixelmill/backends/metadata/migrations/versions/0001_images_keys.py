"""images and api keys

Revision ID: 0001_images_keys
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_images_keys"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("bands", sa.Integer, nullable=False),
        sa.Column("bit_depth", sa.Integer, nullable=False),
        sa.Column("pages", sa.Integer, nullable=False, server_default="1"),
        sa.Column("orientation", sa.Integer, nullable=False, server_default="1"),
        sa.Column("interpretation", sa.String(32), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("pixel_size_um", sa.Float, nullable=True),
        sa.Column("filename", sa.String(512), nullable=True),
        sa.Column("exif", sa.JSON, nullable=False),
        sa.Column("source", sa.String(16), nullable=False, server_default="upload"),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("sha256", name="uq_images_sha256"),
    )
    op.create_index("ix_images_job_id", "images", ["job_id"])
    op.create_index("ix_images_created_at", "images", ["created_at"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("hash", name="uq_api_keys_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_images_created_at", "images")
    op.drop_index("ix_images_job_id", "images")
    op.drop_table("images")
