"""ASGI entry for server worker processes: settings come from the environment that the
CLI (the composition root) prepared, so every worker builds the same container.

Also the lean server supervisor that ``pixelmill up`` replaces itself with (``exec``)
once migrations and the admin key are done: it imports uvicorn and nothing of the
platform, so the process that only watches the workers stays small (see
docs/benchmarks.md, "Render", memory). Keep the imports at the top of this module light.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from pixelmill.runtime.supervisor import WorkerSupervisor, count_restart, worker_command

if TYPE_CHECKING:
    from fastapi import FastAPI

#: the Python statement `pixelmill up` execs into, with one JSON argument (see serve())
SERVE_STATEMENT = "from pixelmill.runtime.asgi import serve; serve()"


def _exit_with_supervisor() -> None:
    """In a worker process of a multi-process ``up``, ask the kernel for SIGTERM when the
    supervisor dies (even by SIGKILL), so no orphaned worker keeps serving the port."""
    supervisor = os.environ.get("PIXELMILL_SUPERVISOR_PID", "")
    if not sys.platform.startswith("linux") or str(os.getppid()) != supervisor:
        return  # one process (the supervisor is this process), or not started by the CLI
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if str(os.getppid()) != supervisor:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def app_factory() -> FastAPI:
    from pixelmill.observability.logging import configure_logging
    from pixelmill.runtime.container import build_container
    from pixelmill.services.gateway.app import create_app
    from pixelmill.settings import Settings

    _exit_with_supervisor()
    settings = Settings()
    configure_logging(settings.observability)
    app = create_app(build_container(settings, migrate=False))
    from pixelmill.runtime import heap

    heap.settle()
    return app


def run_server(host: str, port: int, workers: int, forwarded_allow_ips: str = "") -> None:
    """uvicorn over :func:`app_factory` (settings already exported to the environment).
    ``forwarded_allow_ips`` (``server.forwarded_allow_ips``): the proxies whose
    ``X-Forwarded-*`` headers name the client; empty: nobody's (the socket's peer is)."""
    import uvicorn

    uvicorn.run(
        "pixelmill.runtime.asgi:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=20,
        # uvicorn's defaults believe any loopback client's X-Forwarded-For
        proxy_headers=bool(forwarded_allow_ips.strip()),
        forwarded_allow_ips=forwarded_allow_ips.strip() or "",
    )


def serve_command(spec: dict[str, Any]) -> list[str]:
    """The argv that runs :func:`serve` with ``spec`` in a fresh interpreter."""
    return [sys.executable, "-c", SERVE_STATEMENT, json.dumps(spec)]


def serve() -> None:
    """Run the server as ``pixelmill up`` prepared it (``sys.argv[1]``: JSON with host,
    port, workers, the PIDs of job worker processes and how to restart them).

    Logging is configured by the server processes (:func:`app_factory`, from the settings
    ``up`` exported); this supervisor logs only worker restarts."""
    spec = json.loads(sys.argv[1])
    supervisor = supervise(spec)
    try:
        forwarded = str(spec.get("forwarded_allow_ips", ""))
        run_server(spec["host"], int(spec["port"]), int(spec["workers"]), forwarded)
    finally:
        supervisor.stop()


def supervise(spec: dict[str, Any]) -> WorkerSupervisor:
    """A started :class:`WorkerSupervisor` over ``spec["job_workers"]`` (PIDs), restarting
    with ``spec["worker_command"]`` and ``spec["restart"]`` (backoff settings)."""
    restart = spec.get("restart") or {}
    return WorkerSupervisor(
        list(spec.get("worker_command") or worker_command()),
        [int(pid) for pid in spec.get("job_workers", [])],
        min_backoff_s=float(restart.get("min_backoff_s", 0.5)),
        max_backoff_s=float(restart.get("max_backoff_s", 30.0)),
        stable_after_s=float(restart.get("stable_after_s", 60.0)),
        on_restart=count_restart,
    ).start()
