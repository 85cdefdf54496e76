"""The live autoscaler against real RabbitMQ and PostgreSQL, with real ``pixelmill
worker`` processes (issue 15, items 6-7).

* ``pixelmill autoscaler`` (local actuator) under a burst of jobs: workers scale up, the
  backlog drains, every job succeeds exactly once, the workers scale back down, and the
  gateway's ``GET /v1/autoscaler`` shows the decisions with their reasons.
* The local actuator stopping a worker in the middle of a task: the worker drains, the
  task finishes on it, nothing is lost or run twice.

Every wait is on a condition with a deadline; nothing asserts how long a step took.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixelmill.runtime.local_actuator import LocalActuator
from tests.helpers import make_key
from tests.integration.jobs.conftest import REPO, Cluster, make_cluster
from tests.jobs_helpers import wait_for

pytestmark = [pytest.mark.server, pytest.mark.slow]

#: one transform queue, 1..3 single-thread workers, decisions twice a second, a short
#: scale-down window: the whole story fits well inside the 90-s budget
AUTOSCALER_ENV = {
    "PIXELMILL_AUTOSCALE__QUEUES": json.dumps(
        {"transform": {"slo_s": 2.0, "min_replicas": 1, "max_replicas": 3, "cold_start_s": 3}}
    ),
    "PIXELMILL_AUTOSCALE__LIVE__QUEUES": '["transform"]',
    "PIXELMILL_AUTOSCALE__LIVE__WINDOW_S": "8",
    "PIXELMILL_AUTOSCALE__LIVE__SHORT_WINDOW_S": "3",
    "PIXELMILL_AUTOSCALE__LIVE__DRAIN_TIMEOUT_S": "60",
    "PIXELMILL_AUTOSCALE__INTERVAL_S": "0.5",
    "PIXELMILL_AUTOSCALE__SCALE_DOWN_WINDOW_S": "4",
    "PIXELMILL_AUTOSCALE__MAX_DOWN_STEP": "1.0",
    "PIXELMILL_AUTOSCALE__PANIC_HOLD_S": "2",
    # no forecast bucket closes within the test: the forecast needs history it cannot have
    "PIXELMILL_AUTOSCALE__FORECAST_BUCKET_S": "3600",
}


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, amqp_url: str) -> Iterator[Cluster]:
    yield from make_cluster(
        tmp_path, postgres_url, amqp_url, {"url": f"file://{tmp_path / 'objects'}"}
    )


def consumers(cluster: Cluster, queue: str = "transform") -> int:
    """Workers consuming ``queue``, as RabbitMQ counts them."""
    stats = cluster.gateway.jobs.broker.queue_stats()
    return sum(c for q, lane, _, c in stats if q == queue and lane == "normal")


def test_a_burst_scales_workers_up_drains_the_backlog_and_scales_back_down(
    cluster: Cluster,
) -> None:
    gw = cluster.gateway
    log_path = cluster.logs / "autoscaler.log"
    # given the autoscaler running with the local actuator (it starts the first worker)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from pixelmill.runtime.cli import main; main()", "autoscaler"],
        env={**cluster.env, **AUTOSCALER_ENV},
        cwd=REPO,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for(lambda: consumers(cluster) == 1, timeout=30), log_path.read_text()
        # when a burst of 30 jobs of 0.8 s each arrives at once
        ids = [gw.submit(kind="test.sleep", params={"seconds": 0.8})["id"] for _ in range(30)]
        # then workers scale up to the maximum (3) while the backlog is there
        assert wait_for(lambda: consumers(cluster) == 3, timeout=30), log_path.read_text()
        # and every job succeeds, exactly once, the work spread over several workers
        done = [gw.wait(job_id, timeout=60) for job_id in ids]
        assert {job["state"] for job in done} == {"succeeded"}
        assert all(cluster.succeeded_events(job_id) == 1 for job_id in ids)
        pids = {task["result"]["pid"] for job in done for task in job["tasks"]}
        assert len(pids) >= 2
        # and once the load is gone the workers drain back down to the minimum (1)
        assert wait_for(lambda: consumers(cluster) == 1, timeout=30), log_path.read_text()
        # and the gateway shows the decision and why (admins only)
        _, admin = make_key(gw.container, "autoscaler admin", role="admin")
        state = gw.client.get("/v1/autoscaler", headers={"Authorization": f"Bearer {admin}"})
        assert state.status_code == 200, state.text
        transform = state.json()["services"]["transform"]
        assert transform["replicas"] == 1 and transform["dry_run"] is False
        assert transform["reasons"], transform
        assert gw.client.get("/v1/autoscaler", headers=gw.auth).status_code == 403
        reasons = {
            reason
            for event in gw.container.events.list(action="autoscaler.decision", limit=500)
            for reason in (event.after or {}).get("reasons", [])
        }
        assert "scale_up" in reasons and "scale_down" in reasons, reasons
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(90)
    # the autoscaler drained its workers on the way out: no consumer is left
    assert wait_for(lambda: consumers(cluster) == 0, timeout=30)


def test_stopping_a_worker_mid_task_lets_the_task_finish_and_loses_nothing(
    cluster: Cluster,
) -> None:
    gw = cluster.gateway
    actuator = LocalActuator(["transform"], threads=1, drain_timeout_s=60, env=cluster.env)
    try:
        # given one worker running a 3-s task
        actuator.scale("transform", 1)
        assert wait_for(lambda: consumers(cluster) == 1, timeout=30)
        (pid,) = actuator.pids("transform")
        job = gw.submit(kind="test.sleep", params={"seconds": 3.0})
        wait_for(lambda: gw.job(job["id"])["state"] == "running", timeout=20)
        # when the actuator scales to zero while the task runs
        actuator.scale("transform", 0)
        assert actuator.replicas("transform") == (0, 0)
        # then the worker stops taking work, finishes the task, and only then exits
        assert wait_for(lambda: consumers(cluster) == 0, timeout=10)
        done = gw.wait(job["id"], timeout=30)
        assert done["state"] == "succeeded", done
        (task,) = done["tasks"]
        assert task["result"]["pid"] == pid and task["result"]["attempt"] == 1
        assert cluster.succeeded_events(job["id"]) == 1
        assert wait_for(lambda: actuator.pids("transform") == [], timeout=30)
    finally:
        actuator.close()
