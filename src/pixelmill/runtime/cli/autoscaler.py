"""``pixelmill autoscaler``: the live autoscaler of a distributed deployment.

It reads the broker's queue counters and the jobs DB, decides with the policy of
``pixelmill.autoscale`` every ``autoscale.interval_s``, and reports each decision as
metrics (``--health-port``: /metrics), as ``autoscaler.decision`` events (the gateway's
``GET /v1/autoscaler``) and on its log. Without ``--dry-run`` it actuates
(``autoscale.live.actuator``: local worker processes, or Kubernetes Deployments).
"""

from __future__ import annotations

import os
import sys
import threading

import click

from pixelmill.runtime.cli._common import settings_from, start_health, url_options


@click.command("autoscaler")
@click.option("--dry-run", is_flag=True, help="Decide and report only; start or stop nothing.")
@click.option(
    "--health-port",
    default=None,
    type=click.IntRange(0, 65535),
    help="Serve /livez, /readyz and /metrics on this port (default "
    "observability.health_port; 0: off).",
)
@url_options
def autoscaler_command(
    dry_run: bool,
    health_port: int | None,
    data_dir: str | None,
    broker_url: str | None,
    database_url: str | None,
    storage_url: str | None,
    cache_url: str | None,
) -> None:
    """Run the autoscaler until SIGTERM: read live metrics, decide, report, actuate."""
    from pixelmill.runtime.autoscale import build_autoscaler
    from pixelmill.runtime.container import build_container
    from pixelmill.runtime.signals import stop_on_signals

    settings = settings_from(data_dir, broker_url, database_url, storage_url, cache_url)
    container = build_container(settings, migrate=False)
    if not container.broker.durable:
        container.close()
        raise click.ClickException(
            "the autoscaler needs a shared broker: set PIXELMILL_BROKER__URL=amqp://..."
        )
    health = start_health(container, health_port, name="autoscaler")
    stop = threading.Event()
    stop_on_signals(stop)
    service = build_autoscaler(container, dry_run=dry_run)
    mode = "dry run" if dry_run else settings.autoscale.live.actuator
    click.echo(f"pixelmill autoscaler ready (pid {os.getpid()}, {mode})")
    sys.stdout.flush()
    try:
        service.run(stop)
    finally:
        if service.actuator is not None:
            service.actuator.close()  # local workers drain: they finish their tasks
        if health is not None:
            health.stop()
        from pixelmill.observability import metrics

        container.close()
        metrics.process_exiting()
