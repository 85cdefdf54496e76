"""Helpers shared by the job tests (and the job benchmarks): polling with a deadline, an
embedded ``pixelmill up`` process started (and killed) by the test, a job made straight
through the repository, and a Server-Sent Events reader."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import orjson

if TYPE_CHECKING:
    from pixelmill.backends.metadata.jobs import JobRepository

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
            # this checkout's code, not whatever `pixelmill` the venv has installed
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
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

    wait_answering(proc, f"http://127.0.0.1:{port}/healthz", log)
    return proc


def wait_answering(
    proc: subprocess.Popen[bytes], url: str, log: Path, *, timeout: float = 60
) -> None:
    """Wait until ``url`` answers 200, failing with the process's log if it exits first."""

    def ok() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ok, timeout=timeout, interval=0.2)


def admin_auth(log: Path) -> dict[str, str]:
    """The ``Authorization`` header of the admin key ``pixelmill up`` printed once."""
    key = re.search(r"PIXELMILL_API_KEY=(\S+)", log.read_text())
    assert key, log.read_text()
    return {"Authorization": f"Bearer {key.group(1)}"}


def run_concurrently(*targets: Callable[[], object], timeout: float = 60) -> list[BaseException]:
    """Run each target in its own thread at once; the exceptions they raised (none: [])."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], object]) -> None:
        try:
            target()
        except BaseException as exc:  # pragma: no cover - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return errors


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def make_job(
    repo: JobRepository, tasks: int = 1, *, images: list[str] | None = None, **extra: object
) -> str:
    """A queued pipeline job with ``tasks`` tasks, straight through the repository; with
    ``inputs`` among ``extra``, one task per input; ``images`` must exist (else 422)."""
    from pixelmill.backends.metadata.jobs import new_job_id

    job_id = new_job_id()
    inputs = extra.get("inputs")
    task_inputs = list(inputs) if isinstance(inputs, list) else [None] * tasks
    repo.create(
        {
            "id": job_id,
            "kind": "pipeline",
            "queue": "transform",
            "priority": 0,
            "params": {},
            "inputs": [],
            "owner": "",
            "time_limit_s": 60.0,
            "max_retries": 3,
            **extra,
        },
        list(enumerate(task_inputs)),
        images=images or (),
    )
    return job_id


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """``(event type, decoded data)`` of each event in a Server-Sent Events stream's
    lines, as they arrive."""
    kind = ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, orjson.loads(line[6:])
