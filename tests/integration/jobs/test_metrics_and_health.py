"""What Prometheus and Kubernetes see of a real gateway and a real worker process:
RED and USE metric families with bounded label sets (no ids), and /livez + /readyz
with named checks on both."""

from __future__ import annotations

import re
from collections import defaultdict

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.jobs.conftest import Cluster
from tests.jobs_helpers import free_port, wait_for

pytestmark = [pytest.mark.server, pytest.mark.slow]

#: an id of ours (images, jobs: 32 hex digits) or anything long and random-looking
ID_LIKE = re.compile(r"[0-9a-f]{16,}|[A-Za-z0-9_-]{40,}")


def scrape(text: str) -> dict[str, list[dict[str, str]]]:
    """Family name -> the label sets of its samples."""
    families: dict[str, list[dict[str, str]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            families[family.name].append(dict(sample.labels))
    return families


def value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def assert_bounded(
    families: dict[str, list[dict[str, str]]], routes: set[str] | None = None
) -> None:
    """No label holds an id. A fresh process (``routes`` None) has few series; in this
    test process, which every other test's requests also went through, route labels
    must be the app's route templates (so series grow with the API, not with traffic)."""
    for name, label_sets in families.items():
        for labels in label_sets:
            for key, val in labels.items():
                assert not ID_LIKE.search(val), f"{name}{{{key}={val!r}}} holds an id"
                if routes is not None and key == "route":
                    template = re.sub(r"\{(\w+):\w+\}", r"{\1}", val)  # {x:path} -> {x}
                    assert template in routes, f"{name}{{route={val!r}}} is not a template"
        if routes is None:
            assert len(label_sets) < 400, f"{name} has {len(label_sets)} series"


def test_gateway_and_worker_expose_red_and_use_metrics_and_health(cluster: Cluster) -> None:
    # given a worker process with its health endpoint, and a gateway
    port = free_port()
    cluster.env["PIXELMILL_OBSERVABILITY__HEALTH_PORT"] = str(port)
    cluster.start_worker(queues="transform", threads=2)
    worker = f"http://127.0.0.1:{port}"
    gw = cluster.gateway
    # when images are uploaded, rendered, fetched as missing, and a job runs on the worker
    ids = [gw.upload(seed=i) for i in range(2)]
    for image in ids:
        assert gw.client.get(f"/v1/images/{image}/render?w=20", headers=gw.auth).status_code == 200
    # (counters live for the whole test process: this one is compared with before)
    missing_before = value(
        gw.client.get("/metrics").text,
        "pixelmill_http_requests_total",
        route="/v1/images/{image_id}",
        status="404",
    )
    assert gw.client.get("/v1/images/" + "0" * 32, headers=gw.auth).status_code == 404
    job = gw.submit(inputs=ids, pipeline=[{"op": "flip"}])
    assert gw.wait(job["id"])["state"] == "succeeded"
    # then the worker's /metrics counts its tasks, threads and busy time
    text = wait_for(
        lambda: (
            (t := httpx.get(f"{worker}/metrics", timeout=5).text)
            and value(t, "pixelmill_job_tasks_total", queue="transform", outcome="succeeded") >= 2
            and t
        ),
        timeout=15,
    )
    assert value(text, "pixelmill_worker_threads") == 2
    assert value(text, "pixelmill_worker_busy_seconds_total", queue="transform") > 0
    assert value(text, "pixelmill_worker_tasks_in_flight", queue="transform") == 0
    assert value(text, "pixelmill_db_pool_size", pool="metadata") > 0
    worker_families = scrape(text)
    assert "pixelmill_queue_tasks" in worker_families
    assert_bounded(worker_families)
    # and the gateway's /metrics has RED per route template, the cache, queues and pools
    text = gw.client.get("/metrics").text
    families = scrape(text)
    routes = {labels["route"] for labels in families["pixelmill_http_requests"]}
    assert {"/v1/images", "/v1/images/{image_id}/render", "/v1/jobs", "/v1/jobs/{job_id}"} <= routes
    assert (
        value(text, "pixelmill_http_requests_total", route="/v1/images/{image_id}", status="404")
        == missing_before + 1
    )
    assert value(text, "pixelmill_http_request_duration_seconds_count", route="/v1/jobs") >= 1
    assert value(text, "pixelmill_render_cache_total", result="miss") >= 2
    assert value(text, "pixelmill_queue_consumers", queue="transform", lane="normal") >= 1
    assert value(text, "pixelmill_queue_stats_up", source="broker") == 1
    assert value(text, "pixelmill_queue_stats_up", source="store") == 1
    assert value(text, "pixelmill_queue_tasks", queue="transform", state="queued") == 0
    assert "pixelmill_queue_oldest_task_age_seconds" in families
    assert "pixelmill_db_pool_connections_in_use" in families
    templates = set(gw.client.get("/openapi.json").json()["paths"]) | {
        "unmatched", "/docs", "/docs-static", "/openapi.json", "/{path}", "/{signature}/{options}",
    }  # fmt: skip
    assert_bounded(families, routes=templates)
    # and both processes answer the probes, readiness by named check
    for base, get in ((worker, httpx.get), ("", gw.client.get)):
        for path in ("/livez", "/healthz"):
            assert get(f"{base}{path}").json() == {"status": "ok"}
        ready = get(f"{base}/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {
            "database": "ok",
            "storage": "ok",
            "cache": "ok",
            "broker": "ok",
        }
