"""Alembic environment: runs on the connection handed in by Database.upgrade()."""

from __future__ import annotations

from alembic import context

from pixelmill.backends.metadata.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via `alembic` CLI
    import sqlalchemy as sa

    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
