"""Distributed-mode commands of the ``pixelmill`` CLI: ``worker`` and ``gateway``, and
the local-cluster helpers behind ``pixelmill up --workers N``.

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
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
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
