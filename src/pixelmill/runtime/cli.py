"""The ``pixelmill`` command line."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from pixelmill import __version__
from pixelmill.settings import Settings

log = logging.getLogger("pixelmill")


def _settings(data_dir: str | None, **overrides: Any) -> Settings:
    kwargs: dict[str, Any] = {}
    if data_dir:
        kwargs["data_dir"] = Path(data_dir)
    settings = Settings(**kwargs)
    for section, values in overrides.items():
        current = getattr(settings, section)
        update = {k: v for k, v in values.items() if v is not None}
        if update:
            settings = settings.model_copy(update={section: current.model_copy(update=update)})
    return settings


def _export_env(settings: Settings) -> None:
    """Hand the resolved settings to server worker processes through the environment."""
    os.environ["PIXELMILL_DATA_DIR"] = str(settings.data_dir.resolve())
    # lets uvicorn's worker processes know their supervisor (see runtime.asgi)
    os.environ["PIXELMILL_SUPERVISOR_PID"] = str(os.getpid())
    flat = settings.model_dump(mode="json", exclude={"data_dir", "mode"})
    for section, values in flat.items():
        if isinstance(values, dict):
            for key, value in values.items():
                if value is None:
                    continue
                text = json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)
                os.environ[f"PIXELMILL_{section.upper()}__{key.upper()}"] = text


@click.group()
@click.version_option(__version__, prog_name="pixelmill")
def main() -> None:
    """pixelmill: image processing and image ML as scalable microservices."""
    logging.basicConfig(
        level=os.environ.get("PIXELMILL_OBSERVABILITY__LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def ensure_admin_key(container: Any) -> str | None:
    """Create the first admin key if there is none; returns its secret (shown once)."""
    if container.keys.any_admin():
        return None
    _record, secret = container.keys.create("admin (created by first start)", role="admin")
    return str(secret)


@main.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="TCP port (default 8000).")
@click.option("--data-dir", default=None, help="Data folder (default ./pixelmill-data).")
@click.option(
    "--server-workers",
    default=None,
    type=int,
    help="Gateway processes (0 = one per core, the default; 1 = one process).",
)
@click.option(
    "--workers",
    "job_workers",
    default=0,
    type=int,
    help="Job worker processes to run beside the gateway: a local cluster on a real "
    "broker (default the local RabbitMQ). 0 (default): jobs run inside the gateway.",
)
@click.option("--broker-url", default=None, help="Job broker, e.g. amqp://guest:guest@host:5672/.")
@click.option("--database-url", default=None, help="Metadata DB, e.g. postgresql+psycopg://...")
@click.option("--storage-url", default=None, help="Object storage, e.g. s3://bucket.")
def up(
    host: str | None,
    port: int | None,
    data_dir: str | None,
    server_workers: int | None,
    job_workers: int = 0,
    broker_url: str | None = None,
    database_url: str | None = None,
    storage_url: str | None = None,
) -> None:
    """Start the whole platform in one command (embedded: SQLite, local folder)."""
    from pixelmill.runtime import asgi, cli_jobs
    from pixelmill.runtime.container import build_container

    settings = _settings(
        data_dir,
        server={"host": host, "port": port, "workers": server_workers},
        broker={"url": broker_url},
        database={"url": database_url},
        storage={"url": storage_url},
    )
    if job_workers:
        settings = cli_jobs.cluster_settings(settings)
    container = build_container(settings, migrate=True)
    secret = ensure_admin_key(container)
    if secret:
        click.echo(
            "Created the admin API key. It is shown only this once; store it now:\n"
            f"  PIXELMILL_API_KEY={secret}",
        )
    if settings.ml.default_model:  # nuclei@production, idempotent
        cli_ml.register_default_model(container)
    container.close()
    workers = settings.server.workers or os.cpu_count() or 1
    if workers > 1:
        metrics_dir = settings.data_dir.resolve() / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    _export_env(settings)
    procs = cli_jobs.start_local_workers(job_workers) if job_workers else []
    click.echo(
        f"pixelmill {__version__} on http://{settings.server.host}:{settings.server.port} "
        f"(data in {settings.data_dir.resolve()}, {workers} server process(es)"
        + (f", {job_workers} job worker(s) on {settings.broker.url})" if job_workers else ")")
    )
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix" and sys.executable:
        # Become a lean supervisor: exec a fresh interpreter that imports only uvicorn
        # (asgi.serve). Same PID, so signals, the job workers (our children) and the
        # server processes' PR_SET_PDEATHSIG all stay attached; the ~90 MB of settings,
        # container, SQLAlchemy and pyvips imported above is gone.
        spec = {
            "host": settings.server.host,
            "port": settings.server.port,
            "workers": workers,
            "job_workers": [proc.pid for proc in procs],
        }
        command = asgi.serve_command(spec)
        os.execv(command[0], command)
    try:
        asgi.run_server(settings.server.host, settings.server.port, workers)
    finally:
        cli_jobs.stop_local_workers(procs)


@main.group()
def keys() -> None:
    """Manage API keys."""


def _container(data_dir: str | None) -> Any:
    from pixelmill.runtime.container import build_container

    return build_container(_settings(data_dir), migrate=True)


@keys.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["read", "write", "admin"]), default="write")
@click.option("--data-dir", default=None)
def keys_create(name: str, role: str, data_dir: str | None) -> None:
    """Create a key; its secret is printed once and never stored."""
    c = _container(data_dir)
    record, secret = c.keys.create(name, role=role)
    click.echo(
        json.dumps({"id": record.id, "name": record.name, "role": record.role, "key": secret})
    )


@keys.command("list")
@click.option("--data-dir", default=None)
def keys_list(data_dir: str | None) -> None:
    """List keys (ids, names, roles; never secrets)."""
    c = _container(data_dir)
    for r in c.keys.list():
        state = f"revoked {r.revoked_at.isoformat()}" if r.revoked_at else "active"
        click.echo(f"{r.id}\t{r.role}\t{state}\t{r.name}")


@keys.command("revoke")
@click.argument("key_id")
@click.option("--data-dir", default=None)
def keys_revoke(key_id: str, data_dir: str | None) -> None:
    """Revoke a key by id; requests with it get 401 from then on."""
    c = _container(data_dir)
    c.keys.revoke(key_id)
    click.echo(f"revoked {key_id}")


@main.group()
def db() -> None:
    """Metadata DB maintenance."""


@db.command("upgrade")
@click.option("--data-dir", default=None)
@click.option("--database-url", default=None, help="e.g. postgresql+psycopg://user@host/db")
def db_upgrade(data_dir: str | None, database_url: str | None = None) -> None:
    """Apply migrations up to the newest (idempotent)."""
    from pixelmill.backends.metadata.database import Database

    settings = _settings(data_dir, database={"url": database_url})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database_url)
    database.upgrade()
    click.echo(f"database at revision {database.current_revision()}")


@main.command()
@click.argument("url")
@click.option("--key", envvar="PIXELMILL_SECURITY__SIGNING_KEY", required=True, help="Signing key.")
def sign(url: str, key: str) -> None:
    """Print URL (a render path and query) with its HMAC signature appended."""
    from pixelmill.services.gateway.signing import sign_url

    click.echo(sign_url(key, url))


from pixelmill.runtime import cli_ml  # noqa: E402  (ML commands: datasets, train, models)

main.add_command(cli_ml.datasets_group)
main.add_command(cli_ml.train_command)
main.add_command(cli_ml.models_group)

from pixelmill.runtime import cli_jobs  # noqa: E402  (distributed: worker, gateway)

main.add_command(cli_jobs.worker_command)
main.add_command(cli_jobs.gateway_command)
main.add_command(cli_jobs.jobs_group)

from pixelmill.runtime import cli_analysis  # noqa: E402  (analysis: slide, presets)

main.add_command(cli_analysis.slide_group)
main.add_command(cli_analysis.presets_command)

if __name__ == "__main__":  # pragma: no cover
    main()
