"""Distributed mode: the gateway publishes to RabbitMQ, separate worker processes run
the tasks against PostgreSQL, results are served by the gateway."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from pixelmill.backends.broker.base import QUEUES
from tests.helpers import make_image
from tests.integration.gateway.workspace_helpers import study, user
from tests.integration.jobs.conftest import Cluster
from tests.integration.jobs.up_process import pixelmill_up
from tests.jobs_helpers import wait_for

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_a_batch_job_runs_on_a_worker_process(cluster: Cluster) -> None:
    # given two uploaded images and a worker process on the transform queue
    gw = cluster.gateway
    ids = [gw.upload(seed=i) for i in range(2)]
    worker = cluster.start_worker(queues="transform")
    # when a resize+flip pipeline job is submitted over HTTP
    job = gw.submit(inputs=ids, pipeline=[{"op": "resize", "width": 32}, {"op": "flip"}])
    # then it succeeds on the worker, and each result is an image the gateway serves
    done = gw.wait(job["id"])
    assert done["state"] == "succeeded", done
    assert {t["state"] for t in done["tasks"]} == {"succeeded"}
    for image in done["results"]["images"]:
        info = gw.client.get(f"/v1/images/{image}", headers=gw.auth).json()
        assert (info["width"], info["source"], info["job_id"]) == (32, "job", job["id"])
    assert worker.poll() is None


def test_results_land_in_s3_and_are_served_by_the_gateway(s3_cluster: Cluster) -> None:
    # given a cluster whose object storage is S3 (SeaweedFS) and two uploaded images
    gw = s3_cluster.gateway
    ids = [gw.upload(seed=i) for i in range(2)]
    s3_cluster.start_worker(queues="transform")
    # when a pipeline job and an artifact-producing job run on the worker process
    images = gw.wait(gw.submit(inputs=ids, pipeline=[{"op": "rotate", "angle": 90}])["id"])
    tables = gw.wait(gw.submit(kind="test.artifacts", inputs=ids)["id"])
    # then the result images and the aggregated table come back from S3 through the gateway
    assert images["state"] == tables["state"] == "succeeded"
    for image in images["results"]["images"]:
        original = gw.client.get(f"/v1/images/{image}/original", headers=gw.auth)
        assert original.status_code == 200 and original.content[:4] == b"\x89PNG"
    rows = gw.client.get(f"/v1/jobs/{tables['id']}/results/cells", headers=gw.auth).json()
    assert [r["image_id"] for r in rows] == [ids[0], ids[0], ids[1], ids[1]]
    keys = list(gw.container.storage.list(f"jobs/{tables['id']}/"))
    assert len(keys) == 8  # 4 artifacts x 2 tasks, keyed by job, task and name


def _sample(text: str, name: str, label: str = "") -> float:
    """The sum of the samples of ``name`` (with ``label`` among their labels)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + "{", name + " ")) and label in line
    )


def test_up_with_workers_runs_a_local_cluster_and_stops_it(
    tmp_path: Path, postgres_url: str, amqp_url: str
) -> None:
    # given `pixelmill up --workers 2` against the machine's RabbitMQ and PostgreSQL
    with pixelmill_up(tmp_path, postgres_url, amqp_url, workers=2) as up:
        # (its other children are the gateway's server processes: one per core)
        workers = up.job_workers()
        assert len(workers) == 2
        # when a job is submitted to the gateway; then a worker process runs it
        done = up.run_flip_job()
        assert done["state"] == "succeeded"
        # and the gateway's /metrics adds up every process: the task ran in a worker
        metrics = httpx.get(f"{up.base}/metrics", timeout=10).text
        assert _sample(metrics, "pixelmill_job_tasks_total", 'outcome="succeeded"') >= 1
        assert _sample(metrics, "pixelmill_worker_threads") >= 2
        # and SIGTERM to `up` stops the gateway and its workers
        up.process.send_signal(signal.SIGTERM)
        assert up.process.wait(60) is not None
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), timeout=30)


def test_a_worker_records_the_analysis_and_its_event_when_the_job_ends(cluster: Cluster) -> None:
    # given a study with an image, an analysis of it submitted through the gateway (which
    # runs no task in this mode) and a worker process
    gw = cluster.gateway
    ana = user(gw.container, "ana")
    sid = study(gw.client, ana)
    image = gw.client.post("/v1/images", content=make_image(96, 64, seed=3), headers=ana)
    image_id = image.json()["id"]
    added = gw.client.post(f"/v1/studies/{sid}/images", json={"image_id": image_id}, headers=ana)
    assert added.status_code == 201, added.text
    before = gw.container.events.last_id()
    run = gw.client.post(
        f"/v1/studies/{sid}/analyses",
        json={"preset": "he-nuclei", "image_ids": [image_id]},
        headers=ana,
    ).json()
    cluster.start_worker(queues=",".join(QUEUES))
    # when its job ends on the worker, then nobody having read the analysis, its record
    # (straight from the table) is finished and the study's log holds the end
    record = wait_for(
        lambda: (r := gw.container.analyses.repo.get(sid, run["id"])).finished and r, timeout=60
    )
    assert record.status == "done", record.summary
    assert record.summary["images"][image_id]["state"] == "succeeded"
    ends = [
        e
        for e in gw.container.events.list(study_id=sid, after_id=before, newest_first=False)
        if e.action == "analysis.done"
    ]
    assert [e.target_id for e in ends] == [run["id"]]
