"""ASGI entry for server worker processes: settings come from the environment that the
CLI (the composition root) prepared, so every worker builds the same container."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

from fastapi import FastAPI

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.settings import Settings


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
    _exit_with_supervisor()
    settings = Settings()
    return create_app(build_container(settings, migrate=False))
