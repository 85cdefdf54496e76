"""Many hosts, simulated: a gateway host and two worker hosts, each a network namespace
with a link of its own into a bridge (a few ms of netem delay), and the "server host"
(the root namespace) with RabbitMQ, PostgreSQL, Redis and SeaweedFS behind it. A job
submitted at the gateway host runs on a worker host; a worker host cut off mid-task has
its task redelivered (RabbitMQ drops the connection once heartbeats stop: 2 s here) and
finished on the other worker host, once, with nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from benchmarks._harness.s3 import S3_BUCKET

from tests.helpers import IN_CI, make_image, make_key
from tests.jobs_helpers import wait_for
from tests.netns import Forwarder, Network, network, unavailable_reason
from tests.servers import S3Server, purge_namespace

pytestmark = [pytest.mark.server, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-c", "from pixelmill.runtime.cli import main; main()")
TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture
def net() -> Iterator[Network]:
    reason = unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason}; CI requires it", pytrace=False)
        pytest.skip(reason)
    with network() as made:
        yield made


class Hosts:
    """The processes started on the hosts of ``net``, stopped by PID at the end."""

    def __init__(self, net: Network, env: dict[str, str], logs: Path) -> None:
        self.net, self.env, self.logs = net, env, logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, host: str, *args: str) -> subprocess.Popen[bytes]:
        env = {**self.env, "PIXELMILL_DATA_DIR": str(self.logs / host)}
        with (self.logs / f"{host}.log").open("wb") as log:
            proc = subprocess.Popen(
                self.net.command(host, [*CLI, *args]),
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs[host] = proc
        return proc

    def log(self, host: str) -> str:
        return (self.logs / f"{host}.log").read_text(errors="replace")

    def worker(self, host: str) -> subprocess.Popen[bytes]:
        proc = self.start(host, "worker", "--queues", "transform", "--threads", "1")
        wait_for(lambda: "worker ready" in self.log(host) or proc.poll() is not None, timeout=90)
        assert proc.poll() is None, self.log(host)
        return proc

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)  # a partitioned host cannot stop cleanly
            proc.wait(30)


def _env(net: Network, postgres_url: str, s3: S3Server) -> dict[str, str]:
    """The settings as the hosts see them: every server at the server host's address."""
    server, s3_port = net.server, urlsplit(s3.endpoint_url).port
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELMILL_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
            "PIXELMILL_DATABASE__URL": postgres_url.replace("127.0.0.1", server),
            # a missed heartbeat for 2 intervals (~4 s) and RabbitMQ drops the consumer
            "PIXELMILL_BROKER__URL": f"amqp://guest:guest@{server}:5672/?heartbeat=2",
            "PIXELMILL_BROKER__NAMESPACE": f"pmh{uuid.uuid4().hex[:8]}",
            "PIXELMILL_CACHE__URL": f"redis://{server}:6379/15",
            "PIXELMILL_STORAGE__URL": f"s3://{S3_BUCKET}",
            "PIXELMILL_STORAGE__S3_ENDPOINT_URL": f"http://{server}:{s3_port}",
            "PIXELMILL_STORAGE__S3_REGION": s3.region,
            "PIXELMILL_STORAGE__S3_ACCESS_KEY": s3.access_key,
            "PIXELMILL_STORAGE__S3_SECRET_KEY": s3.secret_key,
            "PIXELMILL_STORAGE__S3_PREFIX": f"hosts-{uuid.uuid4().hex[:8]}",
            "PIXELMILL_JOBS__PLUGINS": '["tests.jobs_kinds"]',
        }
    )
    return env


def _write_key(tmp_path: Path, postgres_url: str) -> str:
    """Migrate the database (from the server host) and make a write key."""
    from pixelmill.runtime.container import build_container
    from pixelmill.settings import Settings

    settings = Settings(data_dir=tmp_path / "root", database={"url": postgres_url})
    container = build_container(settings, migrate=True)
    try:
        return make_key(container, "hosts test", role="write")[1]
    finally:
        container.close()


def test_a_task_of_a_partitioned_worker_host_finishes_on_another(
    net: Network,
    tmp_path: Path,
    postgres_url: str,
    amqp_url: str,
    redis_url: str,
    s3_server: S3Server,
) -> None:
    gateway = net.add_host("gw", delay_ms=5)
    net.add_host("w1")
    net.add_host("w2")
    ports = [5432, 5672, 6379, urlsplit(s3_server.endpoint_url).port or 0]
    auth = {"Authorization": f"Bearer {_write_key(tmp_path, postgres_url)}"}
    with Forwarder(net.server, ports):
        env = _env(net, postgres_url, s3_server)
        hosts = Hosts(net, env, tmp_path)
        try:
            _run(hosts, gateway, auth)
        finally:
            hosts.stop()
            purge_namespace(amqp_url, env["PIXELMILL_BROKER__NAMESPACE"])


def _run(hosts: Hosts, gateway: str, auth: dict[str, str]) -> None:
    # given a gateway host and a worker host
    gw = hosts.start("gw", "gateway", "--host", gateway, "--port", "8000", "--server-workers", "1")
    w1 = hosts.worker("w1")
    client = httpx.Client(base_url=f"http://{gateway}:8000", headers=auth, timeout=30)

    def ready() -> bool:
        assert gw.poll() is None, hosts.log("gw")
        try:
            return client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout=90, interval=0.2)

    def job(job_id: str) -> dict[str, Any]:
        resp = client.get(f"/v1/jobs/{job_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def finished(job_id: str) -> dict[str, Any]:
        return wait_for(  # type: ignore[no-any-return]
            lambda: (j := job(job_id))["state"] in TERMINAL and j, timeout=60, interval=0.1
        )

    # when an image is uploaded at the gateway host and a pipeline job submitted there
    upload = client.post("/v1/images", content=make_image(64, 48, fmt=".png"))
    assert upload.status_code == 201, upload.text
    submitted = client.post(
        "/v1/jobs", json={"inputs": [upload.json()["id"]], "pipeline": [{"op": "flip"}]}
    )
    assert submitted.status_code == 202, submitted.text
    # then it runs on the worker host and its result is served by the gateway host
    done = finished(submitted.json()["id"])
    assert done["state"] == "succeeded", done
    result = client.get(f"/v1/images/{done['results']['images'][0]}/original")
    assert result.status_code == 200 and result.content[:4] == b"\x89PNG"

    # given a long task running on worker host w1
    slow = client.post("/v1/jobs", json={"kind": "test.firstslow", "params": {"first_s": 300}})
    assert slow.status_code == 202, slow.text
    slow_id = slow.json()["id"]
    wait_for(lambda: job(slow_id)["tasks"][0]["state"] == "running", timeout=30, interval=0.1)
    # and a second worker host, idle
    w2 = hosts.worker("w2")
    # when w1 is cut off from every other host mid-task
    hosts.net.partition("w1")
    # then the task is delivered again, to w2, and finishes there once
    done = finished(slow_id)
    assert done["state"] == "succeeded", done
    assert len(done["tasks"]) == 1, done
    assert done["tasks"][0]["attempts"] == 2, done  # w1's first, w2's second
    assert done["result"] == {"attempt": 2, "pid": w2.pid}, done
    assert w1.poll() is None  # still running its first attempt, unreachable
