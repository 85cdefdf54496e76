"""Distributed-mode commands of the ``pixelmill`` CLI: ``worker`` and ``gateway``, and
the local-cluster helpers behind ``pixelmill up --workers N``; ``jobs purge``.

Every process is configured by URLs (broker, metadata DB, object storage, cache), from
options or the ``PIXELMILL_*`` environment, so the same commands run on one laptop or
as containers (see deploy/compose.yaml)::

    pixelmill db upgrade --database-url postgresql+psycopg://postgres@127.0.0.1/pixelmill
    pixelmill worker --queues transform,analyse --broker-url amqp://guest:guest@127.0.0.1:5672/ ...
    pixelmill gateway --port 8000 --broker-url ... --database-url ... --storage-url s3://bucket
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from pixelmill.backends.broker.base import QUEUES
from pixelmill.settings import Settings

LOCAL_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"


def url_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The backend URL options every distributed command takes."""
    for option in reversed(
        [
            click.option("--data-dir", default=None, help="Data folder (SQLite, local objects)."),
            click.option("--broker-url", default=None, help="amqp://... (or memory://)."),
            click.option(
                "--database-url", default=None, help="postgresql+psycopg://... or sqlite."
            ),
            click.option("--storage-url", default=None, help="s3://BUCKET, file://DIR, memory://."),
            click.option("--cache-url", default=None, help="redis://..., memory://, none://."),
        ]
    ):
        fn = option(fn)
    return fn


def settings_from(
    data_dir: str | None,
    broker_url: str | None,
    database_url: str | None,
    storage_url: str | None,
    cache_url: str | None,
    **sections: dict[str, Any],
) -> Settings:
    from pixelmill.runtime.cli import _settings

    return _settings(
        data_dir,
        broker={"url": broker_url},
        database={"url": database_url},
        storage={"url": storage_url},
        cache={"url": cache_url},
        **sections,
    )


def parse_queues(text: str) -> list[str]:
    queues = [q.strip() for q in text.split(",") if q.strip()]
    unknown = [q for q in queues if q not in QUEUES]
    if unknown or not queues:
        raise click.BadParameter(f"queues are a comma list of {', '.join(QUEUES)}")
    return queues


@click.command("worker")
@click.option(
    "--queues",
    default=",".join(QUEUES),
    show_default=True,
    help="Comma list of queues to consume (transform, analyse, segment, train).",
)
@click.option(
    "--threads", default=None, type=int, help="Task threads (default jobs.worker_threads)."
)
@click.option(
    "--shutdown-timeout", default=30.0, show_default=True, help="Seconds SIGTERM waits for tasks."
)
@click.option("--metrics-port", default=None, type=int, help="Serve Prometheus metrics here.")
@url_options
def worker_command(
    queues: str,
    threads: int | None,
    shutdown_timeout: float,
    metrics_port: int | None,
    data_dir: str | None,
    broker_url: str | None,
    database_url: str | None,
    storage_url: str | None,
    cache_url: str | None,
) -> None:
    """Run a job worker: consume QUEUES from the broker until SIGTERM (graceful)."""
    from pixelmill.runtime.container import build_container
    from pixelmill.runtime.signals import dump_stacks_on, stop_on_signals
    from pixelmill.services.worker import WorkerService

    chosen = parse_queues(queues)
    settings = settings_from(data_dir, broker_url, database_url, storage_url, cache_url)
    settings = settings.model_copy(update={"mode": "distributed"})
    container = build_container(settings, migrate=False)
    if container.db.current_revision() is None:
        container.close()
        raise click.ClickException(
            "the metadata DB has no schema: run `pixelmill db upgrade` first"
        )
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="0.0.0.0")
    stop = threading.Event()
    stop_on_signals(stop)  # never `stop.set()` in a handler: see pixelmill.runtime.signals
    dump_stacks_on(signal.SIGUSR1)
    service = WorkerService(
        container,
        queues=chosen,
        threads=threads or settings.jobs.worker_threads,
        shutdown_timeout_s=shutdown_timeout,
    )

    def ready() -> None:
        click.echo(f"pixelmill worker ready (pid {os.getpid()}, queues {','.join(chosen)})")
        sys.stdout.flush()

    try:
        service.run(stop, on_ready=ready)
    finally:
        container.close()


@click.command("gateway")
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="TCP port (default 8000).")
@click.option("--server-workers", default=None, type=int, help="Gateway processes (0: per core).")
@url_options
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
    settings = settings_from(
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
    from pixelmill.runtime.cli import _export_env

    workers = settings.server.workers or os.cpu_count() or 1
    if workers > 1:
        metrics_dir = settings.data_dir.resolve() / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    _export_env(settings)
    os.environ["PIXELMILL_MODE"] = settings.mode
    click.echo(f"pixelmill gateway on http://{settings.server.host}:{settings.server.port}")
    sys.stdout.flush()
    run_server(settings.server.host, settings.server.port, workers)


# -- pixelmill up --workers N --------------------------------------------------------------
def cluster_settings(settings: Settings) -> Settings:
    """Settings for a local cluster: a real broker (the local RabbitMQ unless one is
    configured) and no in-process job threads in the gateway."""
    broker = settings.broker
    if broker.url.startswith("memory://"):
        broker = broker.model_copy(update={"url": LOCAL_RABBITMQ})
    jobs = settings.jobs.model_copy(update={"embedded_threads": 0})
    return settings.model_copy(update={"broker": broker, "jobs": jobs, "mode": "distributed"})


def start_local_workers(count: int, *, threads: int | None = None) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` ``pixelmill worker`` processes with this process's environment
    (export the settings first)."""
    command = [sys.executable, "-c", "from pixelmill.runtime.cli import main; main()", "worker"]
    if threads:
        command += ["--threads", str(threads)]
    return [subprocess.Popen(command, preexec_fn=_die_with_parent) for _ in range(count)]


def _die_with_parent() -> None:
    # Linux: a worker of a local cluster gets SIGTERM when its `up` dies, even by kill -9
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_local_workers(procs: list[subprocess.Popen[bytes]], timeout_s: float = 30.0) -> None:
    """SIGTERM each worker (graceful), then SIGKILL any still running after the timeout."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- pixelmill jobs purge ------------------------------------------------------------------
@click.group("jobs")
def jobs_group() -> None:
    """Job maintenance."""


@jobs_group.command("purge")
@click.option(
    "--older-than",
    "older_than",
    default=None,
    type=click.FloatRange(min=0),
    help="Days (fractions allowed) since a job finished; default jobs.retention_days.",
)
@click.option("--dry-run", is_flag=True, help="Only count the jobs that would be deleted.")
@click.option("--data-dir", default=None, help="Data folder (SQLite, local objects).")
@click.option("--database-url", default=None, help="postgresql+psycopg://... or sqlite.")
@click.option("--storage-url", default=None, help="s3://BUCKET, file://DIR, memory://.")
def jobs_purge(
    older_than: float | None,
    dry_run: bool,
    data_dir: str | None,
    database_url: str | None,
    storage_url: str | None,
) -> None:
    """Delete finished jobs (succeeded, failed, cancelled) older than --older-than days,
    with their tasks, events and artifacts; result images stay. Workers and `pixelmill
    up` do this by themselves (jobs.retention_days); this runs it now, to the end."""
    from datetime import UTC, datetime

    from pixelmill.backends.metadata.database import Database
    from pixelmill.backends.metadata.jobs import JobRepository
    from pixelmill.runtime.container import make_storage
    from pixelmill.services.jobs import retention

    settings = settings_from(data_dir, None, database_url, storage_url, None)
    days = older_than if older_than is not None else settings.jobs.retention_days
    if older_than is None and days <= 0:
        raise click.ClickException(
            "retention is off (jobs.retention_days = 0): say how old with --older-than DAYS"
        )
    database = Database(settings.database_url, pool_size=2)
    try:
        if database.current_revision() is None:
            raise click.ClickException(
                "the metadata DB has no schema: run `pixelmill db upgrade` first"
            )
        repo = JobRepository(database)
        now = datetime.now(UTC)
        before = retention.cutoff(days, now=now)
        stamp = before.isoformat(timespec="seconds")
        if dry_run:
            count = repo.count_finished(before=before)
            click.echo(f"would delete {count} job(s) finished before {stamp} (dry run)")
            return
        result = retention.purge(
            repo,
            make_storage(settings),
            older_than_days=days,
            batch=settings.jobs.retention_batch,
            now=now,
        )
        click.echo(
            f"deleted {result.jobs} job(s) finished before {stamp} "
            f"and {result.objects} artifact object(s)"
        )
    finally:
        database.dispose()
