"""Traces with the OpenTelemetry SDK's in-memory exporter: one trace runs from the HTTP
submit in the gateway through RabbitMQ into the worker's task, its pipeline steps, its
result write and its DB statements; a render is traced stage by stage, continuing the
caller's ``traceparent``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pixelmill.observability import tracing
from pixelmill.runtime.container import build_container
from tests.integration.jobs.conftest import Gateway, job_settings, open_gateway

pytest.importorskip("opentelemetry.sdk", reason="the OpenTelemetry SDK is not installed")

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def spans() -> Iterator[Any]:
    """Tracing on with the in-memory exporter for this test (off again after)."""
    tracing.reset_for_tests()
    yield lambda: list(exporter().get_finished_spans())
    tracing.reset_for_tests()


def exporter() -> Any:
    found = tracing.memory_exporter()
    assert found is not None
    return found


def in_trace(spans: list[Any], trace_id: int) -> dict[str, list[Any]]:
    named: dict[str, list[Any]] = {}
    for span in spans:
        if span.context.trace_id == trace_id:
            named.setdefault(span.name, []).append(span)
    return named


def ancestors(span: Any, by_id: dict[int, Any]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


@pytest.mark.server
def test_one_trace_spans_the_submit_rabbitmq_and_the_worker_steps(
    tmp_path: Path, postgres_url: str, amqp_url: str, spans: Any
) -> None:
    # given a gateway and a job worker on RabbitMQ and PostgreSQL, tracing to memory
    settings = job_settings(
        tmp_path,
        database={"url": postgres_url},
        broker={"url": amqp_url, "namespace": f"pmtest-{uuid.uuid4().hex[:8]}"},
        observability={"tracing": {"exporter": "memory"}},
    )
    gateway_run = open_gateway(settings)
    gw: Gateway = next(gateway_run)
    worker = build_container(settings, migrate=False)
    try:
        # (the worker consumes on Dramatiq's own threads: no context is inherited, the
        # trace can only arrive in the message)
        worker.job_daemon.serve(["transform"], threads=1)
        image = gw.upload(seed=3)
        # when a pipeline job is submitted over HTTP and runs on the worker
        job = gw.submit(inputs=[image], pipeline=[{"op": "resize", "width": 16}, {"op": "flip"}])
        assert gw.wait(job["id"])["state"] == "succeeded"
        worker.job_daemon.stop(timeout_s=10)
        tracing.flush()
        finished = spans()
        # then the submit's HTTP span starts a trace that holds the publish, the worker's
        # task, each pipeline step, the result write and DB statements on both sides
        submit = next(s for s in finished if s.name == "POST /v1/jobs")
        trace = in_trace(finished, submit.context.trace_id)
        for name in (
            "job.submit",
            "publish transform",
            "process transform",
            "job.step step 0 (resize)",
            "job.step step 1 (flip)",
            "job.step encode",
            "job.result_image.write",
            "db INSERT",
        ):
            assert name in trace, (name, sorted(trace))
        by_id = {s.context.span_id: s for s in finished}
        consume = trace["process transform"][0]
        assert ancestors(consume, by_id)[:3] == ["publish transform", "job.submit", "POST /v1/jobs"]
        assert consume.attributes["pixelmill.job_id"] == job["id"]
        step = trace["job.step step 0 (resize)"][0]
        assert "process transform" in ancestors(step, by_id)
        worker_db = [
            s
            for name, found in trace.items()
            if name.startswith("db ")
            for s in found
            if "process transform" in ancestors(s, by_id)
        ]
        assert worker_db, "the worker's statements belong to the trace too"
    finally:
        worker.close()
        gateway_run.close()
        from pixelmill.backends.broker.rabbitmq import RabbitmqBroker

        RabbitmqBroker(amqp_url, namespace=settings.broker.namespace).purge()


@pytest.mark.server
def test_a_render_is_traced_stage_by_stage_in_the_callers_trace(
    tmp_path: Path, redis_url: str, spans: Any
) -> None:
    # given a gateway with a Redis result cache and object storage without local paths,
    # tracing to memory, and an uploaded image
    settings = job_settings(
        tmp_path,
        cache={"url": redis_url},
        storage={"url": "memory://"},
        observability={"tracing": {"exporter": "memory"}},
    )
    run = open_gateway(settings)
    gw = next(run)
    try:
        image = gw.upload(200, 150)
        # when a caller in a trace of its own asks for a render
        parent = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
        resp = gw.client.get(
            f"/v1/images/{image}/render?w=50&format=png",
            headers={**gw.auth, "traceparent": parent, "X-Request-ID": "render-1"},
        )
        assert resp.status_code == 200
        assert resp.headers["x-request-id"] == "render-1"
    finally:
        run.close()
    # then the gateway's spans continue that trace: the request, then each render stage
    trace = in_trace(spans(), int(CALLER_TRACE, 16))
    server = trace["GET /v1/images/{image_id}/render"][0]
    assert server.attributes["http.response.status_code"] == 200
    for stage in ("render.cache.get", "render.fetch", "render.decode_ops", "render.encode"):
        assert stage in trace, (stage, sorted(trace))
        assert trace[stage][0].parent.span_id == server.context.span_id
    assert "render.cache.set" in trace
