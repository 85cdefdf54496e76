"""``pixelmill up --workers N`` started as a real process against the machine's RabbitMQ
and PostgreSQL, with its children found by PID; everything it started is killed and its
queues purged afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import make_image
from tests.integration.jobs.conftest import REPO, TERMINAL
from tests.jobs_helpers import admin_auth, free_port, wait_answering, wait_for


@dataclass
class Up:
    process: subprocess.Popen[bytes]
    base: str  # the gateway's URL
    log: Path

    def workers_ready(self) -> int:
        """How many times a job worker logged that it is ready."""
        return self.log.read_text().count("worker ready")

    def job_workers(self) -> list[int]:
        """The PIDs of the job workers (its other children are the gateway's server processes)."""
        return [pid for pid in children(self.process.pid) if is_job_worker(pid)]

    def run_flip_job(self) -> dict[str, Any]:
        """Upload an image, submit a flip job over HTTP and return the job once it ended."""
        with httpx.Client(base_url=self.base, headers=admin_auth(self.log), timeout=10) as http:
            image = http.post("/v1/images", content=make_image(64, 48)).json()["id"]
            job = http.post("/v1/jobs", json={"inputs": [image], "pipeline": [{"op": "flip"}]})
            assert job.status_code == 202

            def ended() -> dict[str, Any]:  # falsy ({}) until the job ended
                j: dict[str, Any] = http.get(f"/v1/jobs/{job.json()['id']}").json()
                return j if j["state"] in TERMINAL else {}

            return wait_for(ended, timeout=30)


@contextmanager
def pixelmill_up(
    tmp_path: Path,
    postgres_url: str,
    amqp_url: str,
    *,
    workers: int,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Iterator[Up]:
    """``pixelmill up`` answering on /readyz with ``workers`` job workers ready."""
    namespace = f"pmtest-{uuid.uuid4().hex[:8]}"
    # this checkout's code first, not whatever `pixelmill` the venv has installed
    path = [str(REPO / "src"), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    environ = {
        **os.environ,
        "PIXELMILL_BROKER__NAMESPACE": namespace,
        "PYTHONPATH": os.pathsep.join(path),
        **(env or {}),
    }
    port, log = free_port(), tmp_path / "up.log"
    command = [sys.executable, "-c", "from pixelmill.runtime.cli import main; main()", "up"]
    command += ["--data-dir", str(tmp_path / "data"), "--port", str(port)]
    command += ["--workers", str(workers), *args]
    command += ["--broker-url", amqp_url, "--database-url", postgres_url]
    process = subprocess.Popen(
        command, env=environ, cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    try:
        up = Up(process, f"http://127.0.0.1:{port}", log)
        wait_answering(process, f"{up.base}/readyz", log)
        wait_for(lambda: up.workers_ready() == workers, timeout=60)
        yield up
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for pid in children(process.pid):
            os.kill(pid, signal.SIGKILL)
        from pixelmill.backends.broker.rabbitmq import RabbitmqBroker

        RabbitmqBroker(amqp_url, namespace=namespace).purge()


def children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def is_job_worker(pid: int) -> bool:
    try:
        return b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
