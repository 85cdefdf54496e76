"""``pixelmill cluster up`` / ``down``: a distributed deployment on this machine —
HAProxy (its config from ``deploy/compose.yaml``) in front of N gateway processes, M job
workers, on the real RabbitMQ, PostgreSQL, Redis and object storage (see
:mod:`pixelmill.runtime.cluster` and docs/deployment.md, "A cluster on this machine")."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import click

from pixelmill.runtime.cli import _common
from pixelmill.settings import Settings

#: the cluster's own database on the machine's PostgreSQL, made when missing
LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/pixelmill_cluster"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


@click.group("cluster", cls=_common.CleanErrors)
def cluster_group() -> None:
    """A distributed deployment on this machine: HAProxy, gateways, workers."""


@cluster_group.command("up")
@click.option("--gateways", default=2, show_default=True, help="Gateway processes.")
@click.option("--workers", default=2, show_default=True, help="Job worker processes.")
@click.option("--port", default=8000, show_default=True, help="HAProxy's port (0: a free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of every process.")
@click.option("--haproxy", default="haproxy", show_default=True, help="The haproxy program.")
@click.option("--deploy-dir", default=None, help="Folder of compose.yaml (HAProxy's config).")
@click.option("--verbose", is_flag=True, help="Also log INFO (otherwise warnings and errors).")
@_common.url_options
def up_command(
    gateways: int,
    workers: int,
    port: int,
    host: str,
    haproxy: str,
    deploy_dir: str | None,
    verbose: bool,
    data_dir: str | None,
    broker_url: str | None,
    database_url: str | None,
    storage_url: str | None,
    cache_url: str | None,
) -> None:
    """Start HAProxy, GATEWAYS gateways and WORKERS workers; stop on Ctrl+C or SIGTERM.

    Defaults: the local RabbitMQ, a database of its own (pixelmill_cluster) on the local
    PostgreSQL, Redis DB 0 as the cache, the data dir's folder as object storage."""
    from pixelmill.runtime.cluster import ClusterPlan, LocalCluster
    from pixelmill.runtime.container import build_container
    from pixelmill.runtime.lb import compose_haproxy_config, find_deploy_dir
    from pixelmill.runtime.signals import stop_on_signals

    program = shutil.which(haproxy)
    if program is None:
        raise click.ClickException(f"no {haproxy}: install it (`make deploy-tools`)")
    folder = Path(deploy_dir) if deploy_dir else find_deploy_dir()
    if folder is None or not (folder / "compose.yaml").is_file():
        raise click.ClickException("no deploy/compose.yaml found: pass --deploy-dir")
    settings = _local_defaults(
        _common.settings_from(data_dir, broker_url, database_url, storage_url, cache_url)
    )
    settings = _quiet_unless(verbose, _common.cluster_settings(settings))
    container = build_container(settings, migrate=True)
    password, secret = _common.ensure_first_admin(container)
    if password or secret:
        _common.hand_over_admin(password, secret, settings.data_dir)
    if settings.ml.default_model:  # nuclei@production, as `up` and `db upgrade` do
        _common.register_default_model(container)
    container.close()
    _common.prepare_metrics_dir(settings, gateways + workers)
    _common.export_env(settings)
    stop = threading.Event()
    stop_on_signals(stop)
    plan = ClusterPlan(
        data_dir=settings.data_dir.resolve(),
        compose_config=compose_haproxy_config(folder),
        gateways=gateways,
        workers=workers,
        port=port,
        host=host,
        haproxy=program,
    )
    cluster = LocalCluster(plan)
    try:
        try:
            state = cluster.start()
        except RuntimeError as exc:  # a process that never got ready, HAProxy refusing
            raise click.ClickException(f"{exc}; stopping the cluster") from None
        click.echo(
            f"pixelmill cluster on {state['url']}: {gateways} gateway(s), {workers} worker(s) "
            f"behind HAProxy (stats {state['stats_url']}, log {state['haproxy']['log']}). "
            "Stop with Ctrl+C or `pixelmill cluster down`."
        )
        sys.stdout.flush()
        while not stop.wait(0.5):
            if not cluster.check():
                raise click.ClickException("HAProxy exited; stopping the cluster")
    finally:
        cluster.stop()
        click.echo("pixelmill cluster stopped")


def _quiet_unless(verbose: bool, settings: Settings) -> Settings:
    """Log warnings and errors only (INFO too when ``verbose``), in every process."""
    import logging

    from pixelmill.observability.logging import configure_logging

    level = configure_logging(settings.observability, verbose=verbose)
    observability = settings.observability.model_copy(
        update={"log_level": logging.getLevelName(level)}
    )
    return settings.model_copy(update={"observability": observability})


def _local_defaults(settings: Settings) -> Settings:
    """The machine's servers where nothing else is configured: PostgreSQL (a database of
    the cluster's own, created when missing) and Redis."""
    database, cache = settings.database, settings.cache
    if not database.url:
        _ensure_database(LOCAL_POSTGRES)
        database = database.model_copy(update={"url": LOCAL_POSTGRES})
    if cache.url.startswith("memory://"):
        cache = cache.model_copy(update={"url": LOCAL_REDIS})
    return settings.model_copy(update={"database": database, "cache": cache})


def _ensure_database(url: str) -> None:
    import sqlalchemy as sa

    server, name = url.rsplit("/", 1)
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is None:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


@cluster_group.command("down")
@click.option("--data-dir", default=None, help="The data folder `cluster up` runs on.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for it.")
def down_command(data_dir: str | None, timeout: float) -> None:
    """Stop the cluster that `pixelmill cluster up` runs on the data folder (gracefully)."""
    from pixelmill.runtime.cluster import read_state

    settings = _common.settings_for(data_dir)
    state = read_state(settings.data_dir.resolve())
    if state is None:
        raise click.ClickException(f"no cluster runs on {settings.data_dir.resolve()}")
    pid = int(state["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise click.ClickException(f"cluster process {pid} is gone") from None
    deadline = time.monotonic() + timeout
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _running(pid):
        raise click.ClickException(f"cluster process {pid} still runs after {timeout} s")
    click.echo(f"stopped the cluster on {state['url']}")


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped by its parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
