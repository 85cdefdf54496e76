"""Quota tables: per-user overrides of the site's quotas, each user's stored bytes, and
the training minutes each run used. Shared by :mod:`.quotas` and migration 0008."""

from __future__ import annotations

import sqlalchemy as sa

from pixelmill.backends.metadata.tables import metadata

_TS = sa.DateTime(timezone=True)

user_quotas = sa.Table(
    "user_quotas",
    metadata,
    sa.Column(
        "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    # NULL: the site default (settings.quota); 0: unlimited; else the user's own limit
    sa.Column("stored_bytes", sa.BigInteger, nullable=True),
    sa.Column("concurrent_jobs", sa.Integer, nullable=True),
    sa.Column("training_minutes", sa.Integer, nullable=True),
    sa.Column("max_epochs", sa.Integer, nullable=True),
    sa.Column("updated_at", _TS, nullable=False),
    sa.Column("updated_by", sa.String(32), nullable=True),
)

training_usage = sa.Table(
    "training_usage",
    metadata,
    # one row per training job: a redelivered or resumed run adds to its job's row
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(32), nullable=False),
    sa.Column("started_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False, server_default="0"),
    sa.Index("ix_training_usage_user_started", "user_id", "started_at"),
)

user_usage = sa.Table(
    "user_usage",
    metadata,
    # bytes of the user's images, datasets and model versions, kept in step with their
    # rows (added and subtracted in the transactions that insert and delete them), so the
    # storage quota is checked in constant time
    sa.Column("user_id", sa.String(32), primary_key=True),
    sa.Column("stored_bytes", sa.BigInteger, nullable=False, server_default="0"),
)
