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
import time
from typing import TYPE_CHECKING, Any

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
    return create_app(build_container(settings, migrate=False))


def run_server(host: str, port: int, workers: int) -> None:
    """uvicorn over :func:`app_factory` (settings already exported to the environment)."""
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
    )


def serve_command(spec: dict[str, Any]) -> list[str]:
    """The argv that runs :func:`serve` with ``spec`` in a fresh interpreter."""
    return [sys.executable, "-c", SERVE_STATEMENT, json.dumps(spec)]


def serve() -> None:
    """Run the server as ``pixelmill up`` prepared it (``sys.argv[1]``: JSON with host,
    port, workers and the PIDs of job worker processes to stop when the server stops).

    Logging is configured by the server processes (:func:`app_factory`, from the settings
    ``up`` exported); this supervisor logs nothing of its own."""
    spec = json.loads(sys.argv[1])
    try:
        run_server(spec["host"], int(spec["port"]), int(spec["workers"]))
    finally:
        stop_children([int(pid) for pid in spec.get("job_workers", [])])


def stop_children(pids: list[int], timeout_s: float = 30.0) -> None:
    """SIGTERM child processes (graceful), SIGKILL any still running after ``timeout_s``."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    running = set(pids)
    while running and time.monotonic() < deadline:
        for pid in list(running):
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                running.discard(pid)
        if running:
            time.sleep(0.1)
    for pid in running:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
