"""``pixelmill db upgrade``: apply the metadata DB's migrations, and register the shipped
model as ``pixelmill up`` does (the one set-up step of a distributed deployment: its
migrate job or service runs this before the gateways start)."""

from __future__ import annotations

import click

from pixelmill.runtime.cli._common import register_default_model, settings_for


@click.group("db")
def db_group() -> None:
    """Metadata DB maintenance."""


@db_group.command("upgrade")
@click.option("--data-dir", default=None)
@click.option("--database-url", default=None, help="e.g. postgresql+psycopg://user@host/db")
@click.option(
    "--default-model/--no-default-model",
    default=True,
    help="Also register the shipped 'nuclei' model as nuclei@production (idempotent; "
    "needs the object storage; off as well when ml.default_model is).",
)
def db_upgrade(
    data_dir: str | None, database_url: str | None = None, default_model: bool = True
) -> None:
    """Apply migrations up to the newest, and register the shipped model (idempotent)."""
    from pixelmill.backends.metadata.database import Database

    settings = settings_for(data_dir, database={"url": database_url})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database_url)
    database.upgrade()
    click.echo(f"database at revision {database.current_revision()}")
    if default_model and settings.ml.default_model:
        from pixelmill.runtime.container import build_container

        container = build_container(settings, migrate=False)
        try:
            register_default_model(container)
        finally:
            container.close()
