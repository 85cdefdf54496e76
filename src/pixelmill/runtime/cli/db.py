"""``pixelmill db upgrade``: apply the metadata DB's migrations."""

from __future__ import annotations

import click

from pixelmill.runtime.cli._common import settings_for


@click.group("db")
def db_group() -> None:
    """Metadata DB maintenance."""


@db_group.command("upgrade")
@click.option("--data-dir", default=None)
@click.option("--database-url", default=None, help="e.g. postgresql+psycopg://user@host/db")
def db_upgrade(data_dir: str | None, database_url: str | None = None) -> None:
    """Apply migrations up to the newest (idempotent)."""
    from pixelmill.backends.metadata.database import Database

    settings = settings_for(data_dir, database={"url": database_url})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database_url)
    database.upgrade()
    click.echo(f"database at revision {database.current_revision()}")
