"""``pixelmill up --workers`` keeps its job workers running: a worker killed with
SIGKILL is started again by itself, and jobs still run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.helpers import make_image
from tests.integration.jobs.conftest import REPO, TERMINAL
from tests.integration.jobs.test_distributed import _children, _is_job_worker
from tests.jobs_helpers import admin_auth, free_port, wait_answering, wait_for

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_a_killed_job_worker_is_restarted(tmp_path: Path, postgres_url: str, amqp_url: str) -> None:
    namespace = f"pmtest-{uuid.uuid4().hex[:8]}"
    path = [str(REPO / "src"), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {
        **os.environ,
        "PIXELMILL_BROKER__NAMESPACE": namespace,
        "PYTHONPATH": os.pathsep.join(path),
        "PIXELMILL_HEALING__SUPERVISOR__MIN_BACKOFF_S": "0.2",
    }
    port, log = free_port(), tmp_path / "up.log"
    command = [sys.executable, "-c", "from pixelmill.runtime.cli import main; main()", "up"]
    args = ["--data-dir", str(tmp_path / "data"), "--port", str(port), "--workers", "1"]
    args += ["--server-workers", "1", "--broker-url", amqp_url, "--database-url", postgres_url]
    up = subprocess.Popen(
        command + args, env=env, cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_answering(up, f"{base}/readyz", log)
        wait_for(lambda: log.read_text().count("worker ready") == 1, timeout=60)
        (worker,) = [pid for pid in _children(up.pid) if _is_job_worker(pid)]
        # when the job worker is killed
        os.kill(worker, signal.SIGKILL)
        # then a new one is started in its place
        wait_for(lambda: log.read_text().count("worker ready") == 2, timeout=60)
        (replacement,) = [pid for pid in _children(up.pid) if _is_job_worker(pid)]
        assert replacement != worker
        assert "restarting in" in log.read_text()
        # and it runs jobs
        with httpx.Client(base_url=base, headers=admin_auth(log), timeout=10) as http:
            image = http.post("/v1/images", content=make_image(64, 48)).json()["id"]
            job = http.post("/v1/jobs", json={"inputs": [image], "pipeline": [{"op": "flip"}]})
            assert job.status_code == 202
            done = wait_for(
                lambda: (
                    (j := http.get(f"/v1/jobs/{job.json()['id']}").json())["state"] in TERMINAL
                    and j
                ),
                timeout=30,
            )
        assert done["state"] == "succeeded"
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) is not None
        wait_for(lambda: not Path(f"/proc/{replacement}").exists(), timeout=30)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)
        for pid in _children(up.pid):
            os.kill(pid, signal.SIGKILL)
        from pixelmill.backends.broker.rabbitmq import RabbitmqBroker

        RabbitmqBroker(amqp_url, namespace=namespace).purge()
