"""Fault tests: nothing accepted is lost when a worker is killed, RabbitMQ or PostgreSQL
restart, a task kills its worker every time, or the whole embedded process dies.

Real servers and real processes: workers and `pixelmill up` are started here and
killed by PID; RabbitMQ and PostgreSQL are the machine's, restarted with their own
tools and always brought back (``finally``). Each test is bounded by timeouts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import make_image
from tests.integration.jobs.conftest import TERMINAL, Cluster
from tests.jobs_helpers import admin_auth, free_port, group_alive, start_embedded, wait_for

pytestmark = [pytest.mark.server, pytest.mark.slow]


def tolerant_state(cluster: Cluster, job_id: str) -> str | None:
    """The job's state, or None while the DB is unreachable."""
    try:
        return cluster.gateway.jobs.get(job_id).state
    except Exception:
        return None


def task_state(cluster: Cluster, job_id: str) -> tuple[str, int]:
    task = cluster.gateway.jobs.tasks(job_id)[0]
    return task.state, task.attempts


# -- kill -9 a worker mid-job ------------------------------------------------------------
def test_killed_worker_mid_job_the_job_completes_with_one_result(cluster: Cluster) -> None:
    # given a large image and a slow pipeline running on worker A
    gw = cluster.gateway
    resp = gw.client.post("/v1/images", content=make_image(1500, 1500, fmt=".png"), headers=gw.auth)
    image = resp.json()["id"]
    worker_a = cluster.start_worker(threads=1)
    pipeline = [
        {"op": "blur", "sigma": 40},
        {"op": "sharpen", "sigma": 2},
        {"op": "blur", "sigma": 40},
    ]
    job = gw.submit(inputs=[image], pipeline=pipeline, output={"format": "png"})
    wait_for(lambda: task_state(cluster, job["id"]) == ("running", 1), timeout=30, interval=0.01)
    # when worker A is killed with SIGKILL mid-run and worker B takes over
    os.kill(worker_a.pid, signal.SIGKILL)
    worker_a.wait(10)
    cluster.start_worker(threads=1)
    # then the job completes: one result image, one `succeeded` transition, two attempts
    done = gw.wait(job["id"], timeout=60)
    assert done["state"] == "succeeded", (done["error"], done["tasks"])
    assert done["tasks"][0]["attempts"] == 2
    results = gw.container.images.list(limit=50)
    assert [r.id for r in results if r.job_id == job["id"]] == done["results"]["images"]
    assert len(done["results"]["images"]) == 1
    assert cluster.succeeded_events(job["id"]) == 1


# -- restart RabbitMQ while jobs are queued ----------------------------------------------
def _rabbit_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def rabbitmq_stopped() -> Iterator[None]:
    """Stop the RabbitMQ app (the node keeps its data); always started again."""
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
    try:
        yield
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], capture_output=True, timeout=120)
        subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True, timeout=120)
        if not _rabbit_up():  # the node itself went away: start it
            subprocess.run(["rabbitmq-server", "-detached"], capture_output=True, timeout=30)
        wait_for(_rabbit_up, timeout=120, interval=0.5)


@pytest.mark.exclusive
def test_rabbitmq_restart_loses_no_queued_job(cluster: Cluster) -> None:
    # given 20 jobs queued on RabbitMQ (no worker yet)
    gw = cluster.gateway
    queued = [gw.submit(kind="test.sleep", params={"seconds": 0})["id"] for _ in range(20)]
    assert wait_for(lambda: gw.jobs.broker.depth("transform") == 20, timeout=10)
    # when RabbitMQ restarts — and 3 more jobs are submitted while it is down
    with rabbitmq_stopped():
        during = [gw.submit(kind="test.sleep", params={"seconds": 0})["id"] for _ in range(3)]
    after = [gw.submit(kind="test.sleep", params={"seconds": 0})["id"]]
    cluster.start_worker(threads=4)
    # then every accepted job succeeds, exactly once
    for job_id in queued + during + after:
        done = gw.wait(job_id, timeout=60)
        assert done["state"] == "succeeded", done
        assert cluster.succeeded_events(job_id) == 1


# -- restart PostgreSQL mid-run -------------------------------------------------------------
def _pg_restart() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    try:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    finally:

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", 5432), timeout=1):
                    return True
            except OSError:
                subprocess.run(
                    ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                    capture_output=True,
                    timeout=120,
                )
                return False

        wait_for(up, timeout=120, interval=1.0)


@pytest.mark.exclusive
def test_postgresql_restart_mid_run_workers_retry_and_jobs_finish(cluster: Cluster) -> None:
    # given 12 jobs of 0.3 s each running on two worker processes
    gw = cluster.gateway
    cluster.start_worker(threads=2)
    cluster.start_worker(threads=2)
    ids = [gw.submit(kind="test.sleep", params={"seconds": 0.3})["id"] for _ in range(12)]
    wait_for(lambda: any(gw.jobs.get(i).state == "running" for i in ids), timeout=20)
    # when PostgreSQL restarts mid-run
    _pg_restart()
    # then the workers retry and every job finishes, succeeded once
    for job_id in ids:
        wait_for(lambda j=job_id: tolerant_state(cluster, j) in TERMINAL, timeout=90, interval=0.2)
    for job_id in ids:
        job = gw.jobs.get(job_id)
        assert job.state == "succeeded", (job.state, job.error)
        assert cluster.succeeded_events(job_id) == 1
    assert all(w.poll() is None for w in cluster.workers)


# -- a poison job ------------------------------------------------------------------------------
def test_a_poison_job_is_dead_lettered_after_the_delivery_limit(cluster: Cluster) -> None:
    # given a task that kills its worker process every time it runs
    gw = cluster.gateway
    job = gw.submit(kind="test.poison")
    # when workers are restarted after each death (as a supervisor or Kubernetes would)
    deaths = 0
    deadline = time.monotonic() + 90
    while gw.jobs.get(job["id"]).state not in TERMINAL and time.monotonic() < deadline:
        worker = cluster.start_worker(threads=1)
        wait_for(
            lambda w=worker: w.poll() is not None or gw.jobs.get(job["id"]).state in TERMINAL,
            timeout=30,
        )
        deaths += worker.poll() is not None
        assert deaths <= 6, "the poison message kept being delivered"
    # then RabbitMQ dead-lettered it after the delivery limit, and the job failed with why
    done = gw.wait(job["id"], timeout=30)
    assert done["state"] == "failed"
    assert "dead-lettered" in done["error"] and "delivery limit" in done["error"], done["error"]
    assert deaths == 3  # delivery_limit=2: the first delivery and two redeliveries
    assert cluster.workers[-1].poll() is None  # the last worker survives: the loop stopped


# -- graceful shutdown ---------------------------------------------------------------------------
def test_sigterm_lets_the_running_task_finish_before_the_worker_exits(cluster: Cluster) -> None:
    gw = cluster.gateway
    worker = cluster.start_worker(threads=1)
    job = gw.submit(kind="test.sleep", params={"seconds": 1.5})
    wait_for(lambda: task_state(cluster, job["id"]) == ("running", 1), timeout=20, interval=0.01)
    # when the worker gets SIGTERM mid-task
    worker.send_signal(signal.SIGTERM)
    # then it finishes the task (one attempt), then exits cleanly
    assert worker.wait(20) == 0
    done = gw.job(job["id"])
    assert done["state"] == "succeeded"
    assert done["tasks"][0]["attempts"] == 1


# -- kill -9 the whole embedded process ------------------------------------------------------------
def test_kill9_of_embedded_process_accepted_jobs_finish_after_restart(tmp_path: Path) -> None:
    # given `pixelmill up` (embedded: SQLite, local folder, in-process jobs)
    data_dir, log, port = tmp_path / "data", tmp_path / "up.log", free_port()
    proc = start_embedded(data_dir, port, log)
    try:
        auth = admin_auth(log)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers=auth, timeout=10) as http:
            image = http.post("/v1/images", content=make_image(200, 150)).json()["id"]
            # and 6 one-second jobs plus a pipeline job accepted (2 threads: most still queued)
            ids = [
                http.post("/v1/jobs", json={"kind": "test.sleep", "params": {"seconds": 1}}).json()[
                    "id"
                ]
                for _ in range(6)
            ]
            pipe = http.post(
                "/v1/jobs", json={"inputs": [image], "pipeline": [{"op": "resize", "width": 50}]}
            )
            assert pipe.status_code == 202
            ids.append(pipe.json()["id"])
            wait_for(lambda: http.get(f"/v1/jobs/{ids[0]}").json()["state"] == "running")
        # when the whole process (group) is killed with SIGKILL and started again
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not group_alive(proc.pid), timeout=10)
        proc = start_embedded(data_dir, port, log)
        # then every accepted job finishes
        with httpx.Client(base_url=base, headers=auth, timeout=10) as http:

            def state(job_id: str) -> Any:
                return http.get(f"/v1/jobs/{job_id}").json()

            for job_id in ids:
                done = wait_for(
                    lambda j=job_id: state(j)["state"] in TERMINAL and state(j), timeout=60
                )
                assert done["state"] == "succeeded", done
            assert state(ids[-1])["results"]["images"]
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
