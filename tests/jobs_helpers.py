"""Helpers shared by the job tests: polling with a deadline, and an embedded
``pixelmill up`` process started (and killed) by the test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

REPO = Path(__file__).resolve().parents[1]

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_embedded(
    data_dir: Path, port: int, log: Path, env_extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``pixelmill up`` on ``data_dir`` (embedded: SQLite, local folder, in-process jobs,
    the test job kinds loaded) in its own process group, once ``/healthz`` answers."""
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "PIXELMILL_JOBS__PLUGINS": '["tests.jobs_kinds"]',
            "PIXELMILL_JOBS__EMBEDDED_THREADS": "2",
            **(env_extra or {}),
        }
    )
    for key in [k for k in env if k.startswith(("PIXELMILL_BROKER", "PIXELMILL_DATABASE"))]:
        del env[key]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pixelmill.runtime.cli import main; main()",
            "up",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        env=env,
        cwd=REPO,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: `up` and any server processes
    )

    def healthy() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=60, interval=0.2)
    return proc


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
