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
