"""Chaos: the broker connection is cut (a TCP proxy this test owns, between pixelmill and
the machine's RabbitMQ, which keeps running) while jobs are submitted. Every accepted job
completes once it is back, a refused submit carries Retry-After, and the worker process
reconnects by itself. Bounded: a 5 s outage."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import TcpProxy, tcp_proxy
from tests.integration.jobs.conftest import Cluster, make_cluster
from tests.jobs_helpers import wait_for

pytestmark = [pytest.mark.server, pytest.mark.slow]

OUTAGE_S = 5.0


@pytest.fixture
def proxied(tmp_path: Path, postgres_url: str, amqp_url: str) -> Iterator[tuple[Cluster, TcpProxy]]:
    with tcp_proxy("127.0.0.1", 5672) as proxy:
        via_proxy = amqp_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
        storage = {"url": f"file://{tmp_path / 'objects'}"}
        for cluster in make_cluster(tmp_path, postgres_url, via_proxy, storage):
            # the caller's path after this checkout's (where extra test deps may live)
            extra = os.environ.get("PYTHONPATH", "")
            cluster.env["PYTHONPATH"] += os.pathsep + extra if extra else ""
            yield cluster, proxy


def test_broker_cut_during_submissions_loses_no_accepted_job(
    proxied: tuple[Cluster, TcpProxy],
) -> None:
    cluster, proxy = proxied
    gw = cluster.gateway
    image = gw.upload()
    worker = cluster.start_worker(queues="transform")
    pipeline: list[dict[str, Any]] = [{"op": "flip"}]
    assert gw.wait(gw.submit(inputs=[image], pipeline=pipeline)["id"])["state"] == "succeeded"
    # when the broker becomes unreachable while jobs keep being submitted
    proxy.cut()
    accepted: list[str] = []
    refused = 0
    ends = time.monotonic() + OUTAGE_S
    while time.monotonic() < ends:
        r = gw.client.post(
            "/v1/jobs", json={"inputs": [image], "pipeline": pipeline}, headers=gw.auth
        )
        if r.status_code == 202:
            accepted.append(r.json()["id"])
        else:  # a submit that could not be made durable is refused with Retry-After
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) >= 1
            refused += 1
        time.sleep(0.25)
    # the publish breaker opened: submits stopped waiting on the dead broker
    assert gw.container.breakers.states()["broker"] == "open"
    proxy.restore()
    # then every accepted job completes, on the same worker process, reconnected
    assert accepted
    for job_id in accepted:
        assert gw.wait(job_id, timeout=60)["state"] == "succeeded"
    assert worker.poll() is None
    after = gw.submit(inputs=[image], pipeline=pipeline)
    assert gw.wait(after["id"], timeout=30)["state"] == "succeeded"
    wait_for(lambda: gw.container.breakers.states()["broker"] == "closed", timeout=10)
