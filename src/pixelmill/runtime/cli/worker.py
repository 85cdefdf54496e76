"""``pixelmill worker``: a job worker of a distributed deployment.

Every process is configured by URLs (broker, metadata DB, object storage, cache), from
options or the ``PIXELMILL_*`` environment, so the same commands run on one laptop or
as containers (see deploy/compose.yaml)::

    pixelmill db upgrade --database-url postgresql+psycopg://postgres@127.0.0.1/pixelmill
    pixelmill worker --queues transform,analyse --broker-url amqp://guest:guest@127.0.0.1:5672/ ...
    pixelmill gateway --port 8000 --broker-url ... --database-url ... --storage-url s3://bucket
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import click

from pixelmill.backends.broker.base import QUEUES
from pixelmill.runtime.cli._common import settings_from, start_health, url_options


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
@click.option(
    "--health-port",
    default=None,
    type=click.IntRange(0, 65535),
    help="Serve /livez, /readyz and /metrics on this port of observability.health_host "
    "(default observability.health_port; 0: off).",
)
@click.option("--metrics-port", default=None, type=int, hidden=True, help="Old --health-port.")
@url_options
def worker_command(
    queues: str,
    threads: int | None,
    shutdown_timeout: float,
    health_port: int | None,
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
    container = build_container(settings, migrate=False)
    if container.db.current_revision() is None:
        container.close()
        raise click.ClickException(
            "the metadata DB has no schema: run `pixelmill db upgrade` first"
        )
    health = start_health(
        container,
        health_port if health_port is not None else metrics_port,
        name="worker",
        live=container.job_daemon.alive,
    )
    from pixelmill.runtime import heap

    heap.settle()
    stop = threading.Event()
    stop_on_signals(stop)  # never `stop.set()` in a handler: see pixelmill.runtime.signals
    dump_stacks_on(signal.SIGUSR1)
    service = WorkerService(
        container.job_daemon,
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
        if health is not None:
            health.stop()
        from pixelmill.observability import metrics, tracing

        tracing.flush()
        container.close()
        metrics.process_exiting()
