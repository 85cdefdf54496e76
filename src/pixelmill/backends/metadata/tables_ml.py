"""ML tables: datasets, models, immutable model versions, movable aliases and the audit
trail of alias moves (training runs are jobs of kind ``train``). Same ``metadata`` as
:mod:`.tables`."""

from __future__ import annotations

import sqlalchemy as sa

from pixelmill.backends.metadata.tables import metadata

datasets = sa.Table(
    "ml_datasets",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("task", sa.String(32), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("items", sa.Integer, nullable=False),
    sa.Column("classes", sa.JSON, nullable=False),
    sa.Column("split", sa.JSON, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # one dataset per uploader and content: a re-upload by someone else is their own
    sa.UniqueConstraint("created_by", "sha256", name="uq_ml_datasets_created_by"),
)

models = sa.Table(
    "ml_models",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("task", sa.String(32), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

model_versions = sa.Table(
    "ml_model_versions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(100), sa.ForeignKey("ml_models.name"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("framework", sa.String(32), nullable=False),
    sa.Column("input_spec", sa.JSON, nullable=False),
    sa.Column("train_config", sa.JSON, nullable=False),
    sa.Column("dataset_sha256", sa.String(64), nullable=True),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("card", sa.JSON, nullable=False),
    sa.Column("reference", sa.JSON, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=True),
    sa.Column("job_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("model", "version", name="uq_ml_model_versions_model_version"),
)

model_aliases = sa.Table(
    "ml_model_aliases",
    metadata,
    sa.Column("model", sa.String(100), sa.ForeignKey("ml_models.name"), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

model_audit = sa.Table(
    "ml_model_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(100), nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("alias", sa.String(64), nullable=True),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(200), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

model_evaluations = sa.Table(
    "ml_model_evaluations",
    metadata,
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
    sa.Index("ix_ml_model_evaluations_model_version", "model", "version"),
)

# a promotion gate: moving ``alias`` needs the candidate to beat the holder on a dataset
model_gates = sa.Table(
    "ml_model_gates",
    metadata,
    sa.Column("model", sa.String(100), sa.ForeignKey("ml_models.name"), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("dataset_id", sa.String(32), nullable=False),
    sa.Column("metric", sa.String(32), nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
