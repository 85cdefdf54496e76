"""Distributed mode: the gateway publishes to RabbitMQ, separate worker processes run
the tasks against PostgreSQL, results are served by the gateway."""

from __future__ import annotations

import pytest

from tests.integration.jobs.conftest import Cluster

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
