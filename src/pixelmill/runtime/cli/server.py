"""``pixelmill up`` (the whole platform in one command) and ``pixelmill gateway`` (a
stateless gateway of a distributed deployment)."""

from __future__ import annotations

import logging
import os
import sys
from urllib.parse import urlsplit, urlunsplit

import click

from pixelmill import __version__
from pixelmill.observability.logging import configure_logging
from pixelmill.runtime.cli import _common
from pixelmill.runtime.supervisor import worker_command
from pixelmill.settings import Settings


@click.command("up")
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
@click.option(
    "--verbose",
    is_flag=True,
    help="Also show INFO logs (database migrations included); otherwise only warnings "
    "and errors are logged.",
)
def up_command(
    host: str | None,
    port: int | None,
    data_dir: str | None,
    server_workers: int | None,
    job_workers: int = 0,
    broker_url: str | None = None,
    database_url: str | None = None,
    storage_url: str | None = None,
    verbose: bool = False,
) -> None:
    """Start the whole platform in one command (embedded: SQLite, local folder)."""
    from pixelmill.runtime import asgi
    from pixelmill.runtime.container import build_container

    settings = _common.settings_for(
        data_dir,
        server={"host": host, "port": port, "workers": server_workers},
        broker={"url": broker_url},
        database={"url": database_url},
        storage={"url": storage_url},
    )
    if job_workers:
        settings = _common.cluster_settings(settings)
    settings = _logging_for_up(verbose, settings)
    container = build_container(settings, migrate=True)
    password, secret = _common.ensure_first_admin(container)
    key_at = (
        _common.hand_over_admin(password, secret, settings.data_dir) if password or secret else None
    )
    if settings.ml.default_model:  # nuclei@production, idempotent
        _common.register_default_model(container)
    container.close()
    workers = settings.server.workers or os.cpu_count() or 1
    _common.prepare_metrics_dir(settings, workers + job_workers)
    _common.export_env(settings)
    procs = _common.start_local_workers(job_workers) if job_workers else []
    click.echo(banner(settings, workers, job_workers, key_at=key_at, verbose=verbose))
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
            "forwarded_allow_ips": settings.server.forwarded_allow_ips,
            "job_workers": [proc.pid for proc in procs],
            "worker_command": worker_command(),
            "restart": settings.healing.supervisor.model_dump(),
        }
        command = asgi.serve_command(spec)
        os.execv(command[0], command)
    supervisor = asgi.supervise(
        {
            "job_workers": [proc.pid for proc in procs],
            "restart": settings.healing.supervisor.model_dump(),
        }
    )
    try:
        asgi.run_server(
            settings.server.host,
            settings.server.port,
            workers,
            settings.server.forwarded_allow_ips,
        )
    finally:
        supervisor.stop()


def _logging_for_up(verbose: bool, settings: Settings) -> Settings:
    """Configure this process's logging for ``up`` and return ``settings`` with the level
    in effect, so the server and worker processes it starts log alike."""
    level = configure_logging(settings.observability, verbose=verbose)
    observability = settings.observability.model_copy(
        update={"log_level": logging.getLevelName(level)}
    )
    return settings.model_copy(update={"observability": observability})


def banner(
    settings: Settings, workers: int, job_workers: int, *, key_at: str | None, verbose: bool = False
) -> str:
    """What ``pixelmill up`` prints once it is about to serve: where, what, how to go on."""
    url = f"http://{settings.server.host}:{settings.server.port}"
    broker = _without_password(settings.broker.url)
    if job_workers:
        mode = (
            f"local cluster: {workers} server process(es), {job_workers} job worker(s) on {broker}"
        )
    elif settings.broker.url.startswith("memory://"):
        mode = f"embedded: {workers} server process(es); jobs run inside them"
    else:
        mode = f"gateway: {workers} server process(es); jobs go to {broker} (`pixelmill worker`)"
    first_start = "given at the first start; another: `pixelmill keys create NAME --role admin`"
    key = key_at or first_start
    return "\n".join(
        [
            f"pixelmill {__version__} on {url}",
            f"  data       {settings.data_dir.resolve()}",
            f"  mode       {mode}",
            f"  admin key  {key}",
            f"  API docs   {url}/docs",
            "Stop with Ctrl+C."
            + ("" if verbose else " Start-up details (migrations): pixelmill up --verbose"),
        ]
    )


def _without_password(url: str) -> str:
    """``url`` with any password masked, for printing (a broker URL carries one)."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@click.command("gateway")
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="TCP port (default 8000).")
@click.option("--server-workers", default=None, type=int, help="Gateway processes (0: per core).")
@_common.url_options
def gateway_command(
    host: str | None,
    port: int | None,
    server_workers: int | None,
    data_dir: str | None,
    broker_url: str | None,
    database_url: str | None,
    storage_url: str | None,
    cache_url: str | None,
) -> None:
    """Run a stateless gateway (distributed mode): jobs go to the broker, not in-process."""
    settings = _common.settings_from(
        data_dir,
        broker_url,
        database_url,
        storage_url,
        cache_url,
        server={"host": host, "port": port, "workers": server_workers},
    )
    if settings.broker.url.startswith("memory://"):
        click.echo(
            "warning: no --broker-url; jobs run inside this gateway (embedded mode)", err=True
        )
    serve_gateway(settings)


def serve_gateway(settings: Settings) -> None:
    """Export ``settings`` to the environment and run uvicorn over the app factory."""
    from pixelmill.runtime.asgi import run_server

    workers = settings.server.workers or os.cpu_count() or 1
    _common.prepare_metrics_dir(settings, workers)
    _common.export_env(settings)
    click.echo(f"pixelmill gateway on http://{settings.server.host}:{settings.server.port}")
    sys.stdout.flush()
    run_server(
        settings.server.host, settings.server.port, workers, settings.server.forwarded_allow_ips
    )
