"""Helpers every command group of the ``pixelmill`` CLI shares: building the settings
from options, handing them to child processes, opening the container, the first admin
key, the local cluster of ``pixelmill up --workers N``, and clean error lines.

Command modules import this module and never each other.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pixelmill.runtime.supervisor import die_with_parent, worker_command
from pixelmill.settings import Settings

LOCAL_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"


# -- settings ------------------------------------------------------------------------------
def settings_for(data_dir: str | None, **overrides: Any) -> Settings:
    """The settings tree with command-line options on top (``None`` options are unset)."""
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
    """:func:`settings_for` with the options of :func:`url_options`."""
    return settings_for(
        data_dir,
        broker={"url": broker_url},
        database={"url": database_url},
        storage={"url": storage_url},
        cache={"url": cache_url},
        **sections,
    )


#: the resolved settings handed to child processes (0600, in the data dir)
RUN_SETTINGS_FILE = "run-settings.json"


def export_env(settings: Settings) -> None:
    """Hand the resolved settings to server and worker processes: written to a file only
    this user can read (``DATA_DIR/run-settings.json``), named by ``PIXELMILL_CONFIG``.
    Secrets (signing keys, passwords in URLs, the site secret) never enter the
    environment, where any child, crash reporter or ``/proc/PID/environ`` reader sees
    them. The user's own ``PIXELMILL_*`` variables still win, as always."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / RUN_SETTINGS_FILE
    _private_write(path, json.dumps(settings.model_dump(mode="json")))
    os.environ["PIXELMILL_CONFIG"] = str(path)
    os.environ["PIXELMILL_DATA_DIR"] = str(data_dir)
    # lets uvicorn's worker processes know their supervisor (see runtime.asgi)
    os.environ["PIXELMILL_SUPERVISOR_PID"] = str(os.getpid())


def prepare_metrics_dir(settings: Settings, processes: int) -> None:
    """With several processes (server processes and local job workers), point
    prometheus_client at an emptied shared folder (``DATA_DIR/prometheus``) so the
    gateway's ``/metrics`` aggregates every process."""
    if processes > 1:
        metrics_dir = settings.data_dir.resolve() / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


# -- the container -------------------------------------------------------------------------
def open_container(data_dir: str | None) -> Any:
    """The container over the data dir (or the configured URLs), migrated to the newest."""
    from pixelmill.runtime.container import build_container

    return build_container(settings_for(data_dir), migrate=True)


def ensure_first_admin(container: Any) -> tuple[str | None, str | None]:
    """Create the first admin user (or give the one a migration made its password) and
    an admin API key of theirs, when missing. Returns the one-time password and the key
    secret (each ``None`` when nothing was made); neither is stored in plaintext."""
    made = container.accounts.ensure_first_admin()
    password = made[1] if made else None
    if container.keys.any_admin():
        return password, None
    admin = made[0] if made else container.users.by_username("admin")
    _record, secret = container.keys.create(
        "admin (created by first start)", role="admin", user_id=admin.id
    )
    return password, str(secret)


#: where a first start without a terminal leaves the admin key and password (0600)
ADMIN_KEY_FILE = "admin-api-key"
ADMIN_PASSWORD_FILE = "admin-password"


def _private_write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")


def hand_over_admin(password: str | None, secret: str | None, data_dir: Path) -> str:
    """Give the new admin password and key to the person starting pixelmill, once: on
    their terminal, or — under a service manager, whose output ends up in logs — in
    files only its user can read. Returns where they went, for the banner."""
    if sys.stdout.isatty():
        lines = ["Created the first admin. Shown only this once; store it now:"]
        if password:
            lines.append(f"  log in as 'admin' with the password {password}")
        if secret:
            lines.append(f"  PIXELMILL_API_KEY={secret}")
        click.echo("\n".join(lines))
        return "printed above, only this once: store it now"
    places = []
    for value, name, what in (
        (secret, ADMIN_KEY_FILE, "admin API key"),
        (password, ADMIN_PASSWORD_FILE, "password of the user 'admin'"),
    ):
        if value:
            path = data_dir / name
            _private_write(path, value)
            places.append(str(path))
            click.echo(
                f"Created the {what} in {path} (readable by this user only): move it "
                "to your secret store and delete the file."
            )
    return f"in {', '.join(places)}, only this once: move it to your secret store"


def register_default_model(container: Any) -> None:
    """Register the shipped ``nuclei`` model as ``nuclei@production`` (idempotent)."""
    version = container.models.ensure_default()
    if version is not None:
        click.echo(f"model {version.ref} is nuclei@production unless you moved the alias")


# -- pixelmill up --workers N --------------------------------------------------------------
def cluster_settings(settings: Settings) -> Settings:
    """Settings for a local cluster: a real broker (the local RabbitMQ unless one is
    configured) and no in-process job threads in the gateway."""
    broker = settings.broker
    if broker.url.startswith("memory://"):
        broker = broker.model_copy(update={"url": LOCAL_RABBITMQ})
    jobs = settings.jobs.model_copy(update={"embedded_threads": 0})
    return settings.model_copy(update={"broker": broker, "jobs": jobs})


def start_local_workers(count: int, *, threads: int | None = None) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` ``pixelmill worker`` processes with this process's environment
    (export the settings first). :class:`~pixelmill.runtime.supervisor.WorkerSupervisor`
    keeps them running."""
    command = worker_command(threads)
    return [subprocess.Popen(command, preexec_fn=die_with_parent) for _ in range(count)]


# -- output --------------------------------------------------------------------------------
def _clean_invoke(invoke: Any, ctx: click.Context) -> Any:
    from pixelmill.errors import PixelmillError

    try:
        return invoke(ctx)
    except PixelmillError as exc:
        files = exc.extra.get("files") if isinstance(exc.extra, dict) else None
        lines = [f"{exc.title}: {exc.detail}"]
        lines += [f"  {f['file']}: {f['problem']}" for f in (files or [])[:50]]
        raise click.ClickException("\n".join(lines)) from None


class CleanErrors(click.Group):
    """Show pixelmill errors (409 conflicts, 404s, invalid datasets) as clear lines."""

    def invoke(self, ctx: click.Context) -> Any:
        return _clean_invoke(super().invoke, ctx)


class CleanCommand(click.Command):
    """:class:`CleanErrors` for a single command."""

    def invoke(self, ctx: click.Context) -> Any:
        return _clean_invoke(super().invoke, ctx)


def quiet_vips() -> None:
    """Hide libvips' INFO lines (one per thread pool); ML commands print their own progress."""
    import logging

    logging.getLogger("pyvips").setLevel(logging.WARNING)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=1, default=str))


def folder_to_zip(path: Path) -> bytes:
    """A dataset folder (or a .zip file) as zip bytes; files sorted so the hash is stable."""
    if path.is_file():
        return path.read_bytes()
    if not path.is_dir():
        raise click.BadParameter(f"{path} is neither a folder nor a zip file")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(
                file.relative_to(path).as_posix(), date_time=(1980, 1, 1, 0, 0, 0)
            )
            archive.writestr(info, file.read_bytes())
    return buf.getvalue()


# -- option types ---------------------------------------------------------------------------
class Finite(click.FloatRange):
    """A number from ``min`` to ``max`` (both kept); ``nan`` is refused, which
    ``FloatRange`` lets through (it compares false with both bounds)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number.", param, ctx)
        return number


# -- health ---------------------------------------------------------------------------------
def start_health(
    container: Any, port: int | None, *, name: str, live: Callable[[], bool] | None = None
) -> Any:
    """A process's /livez, /readyz and /metrics (``port``, else
    ``observability.health_port``; 0: off), started, or ``None``. A port that cannot be
    served (taken, a host not of this machine) is one clean error line, with the
    container closed."""
    observability = container.settings.observability
    port = observability.health_port if port is None else port
    if not port:
        return None
    from pixelmill.observability.health import HealthServer
    from pixelmill.observability.metrics import render_latest

    host = observability.health_host
    try:
        server = HealthServer(
            host, port, container.readiness_checks(), metrics=render_latest, live=live
        )
    except OSError as error:
        container.close()
        raise click.ClickException(
            f"cannot serve health on {host}:{port}: {error.strerror or error}"
            " (choose another --health-port, or 0 for none)"
        ) from error
    server.start()
    click.echo(f"pixelmill {name} health on http://{host}:{server.port}")
    return server
