"""``pixelmill up --workers`` keeps its job workers running: a worker killed with
SIGKILL is started again by itself, and jobs still run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.integration.jobs.up_process import pixelmill_up
from tests.jobs_helpers import wait_for

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_a_killed_job_worker_is_restarted(tmp_path: Path, postgres_url: str, amqp_url: str) -> None:
    args = ["--server-workers", "1"]
    env = {"PIXELMILL_HEALING__SUPERVISOR__MIN_BACKOFF_S": "0.2"}
    with pixelmill_up(tmp_path, postgres_url, amqp_url, workers=1, args=args, env=env) as up:
        (worker,) = up.job_workers()
        # when the job worker is killed
        os.kill(worker, signal.SIGKILL)
        # then a new one is started in its place
        wait_for(lambda: up.workers_ready() == 2, timeout=60)
        (replacement,) = up.job_workers()
        assert replacement != worker
        assert "restarting in" in up.log.read_text()
        # and it runs jobs
        done = up.run_flip_job()
        assert done["state"] == "succeeded"
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(60) is not None
        wait_for(lambda: not Path(f"/proc/{replacement}").exists(), timeout=30)
