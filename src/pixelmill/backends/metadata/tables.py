"""Table definitions, shared by the repositories and the Alembic migrations."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

images = sa.Table(
    "images",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
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
    sa.Column("job_id", sa.String(64), nullable=True, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    # the user it belongs to ('' for none: job results of unowned jobs, pre-0007 rows
    # without any user); one row per owner and content, so a re-upload by someone else
    # is their own handle and reveals nothing
    sa.Column("owner_id", sa.String(32), nullable=False, server_default=""),
    sa.UniqueConstraint("owner_id", "sha256", name="uq_images_owner_sha256"),
    sa.Index("ix_images_owner_created", "owner_id", "created_at", "id"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("user_id", sa.String(32), nullable=True, index=True),
)
