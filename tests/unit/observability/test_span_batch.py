"""The OTLP/JSON batch processor: spans encoded as they end reach a real HTTP receiver as
the very ``ExportTraceServiceRequest`` the SDK's encoder builds, each exactly once, in
batches; a full queue drops and says so; shutdown sends what waits."""

from __future__ import annotations

import json
import logging
import os
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from pixelmill.observability import tracing
from pixelmill.observability.otlp_json import JsonSpanExporter
from pixelmill.observability.span_batch import JsonBatchProcessor
from tests.jobs_helpers import wait_for
from tests.unit.observability.test_otlp_json import (
    _Receiver,
    finished_spans,
    parsed,
    receiver,
)

__all__ = ["receiver"]  # the fixture, shared with the exporter's tests


def processor(endpoint: str, spans: list[Any], **limits: Any) -> JsonBatchProcessor:
    return JsonBatchProcessor(
        JsonSpanExporter(endpoint, timeout_s=5),
        spans[0].resource,
        spans[0].instrumentation_scope,
        **{"delay_s": 60.0, **limits},
    )


def sent_spans() -> list[dict[str, Any]]:
    return [
        span
        for _, body in _Receiver.bodies
        for group in json.loads(body)["resourceSpans"]
        for scope in group["scopeSpans"]
        for span in scope["spans"]
    ]


def test_the_batch_is_the_request_the_sdks_protobuf_encoder_builds(receiver: str) -> None:
    spans = finished_spans()
    batch = processor(receiver, spans)
    for span in spans:
        batch.on_end(span)
    assert batch.force_flush()
    ((kind, body),) = _Receiver.bodies
    assert kind == "application/json"
    assert parsed(body) == encode_spans(spans)
    batch.shutdown()


def test_full_batches_leave_by_themselves_and_each_span_once(receiver: str) -> None:
    spans = finished_spans()  # four spans
    batch = processor(receiver, spans, max_batch=2)
    for span in spans * 3:
        batch.on_end(span)
    # the export thread sends them, with no flush and long before the 60 s delay
    wait_for(lambda: len(_Receiver.bodies) == 6, timeout=10)
    batch.shutdown()
    # full batches only: the export thread never sends a batch a few spans at a time
    sizes = [
        len(parsed(body).resource_spans[0].scope_spans[0].spans) for _, body in _Receiver.bodies
    ]
    assert sizes == [2] * 6
    names = sorted(span["name"] for span in sent_spans())
    assert names == sorted(span.name for span in spans * 3)
    batch.on_end(spans[0])  # after shutdown: dropped, nothing sent
    batch.force_flush()
    assert len(sent_spans()) == 12


def test_a_full_queue_drops_spans_and_says_how_many(
    receiver: str, caplog: pytest.LogCaptureFixture
) -> None:
    spans = finished_spans()
    batch = processor(receiver, spans, max_batch=100, max_queue=3)
    with caplog.at_level(logging.WARNING, "pixelmill.observability.span_batch"):
        for span in spans * 2:
            batch.on_end(span)
        batch.force_flush()
    assert len(sent_spans()) == 3
    assert "5 spans dropped" in caplog.text
    batch.shutdown()


def test_traced_requests_reach_the_collector_as_lean_spans(receiver: str) -> None:
    tracing.reset_for_tests()
    settings = SimpleNamespace(
        exporter="otlp",
        endpoint=receiver,
        sample_ratio=1.0,
        protocol="http/json",
        service_name="pm-test",
    )
    try:
        assert tracing.configure_tracing(settings)
        with tracing.http_server_span("GET", "/v1/images/a/render", {}) as server:
            with tracing.stage("render.encode", {"pixelmill.format": "jpeg"}):
                pass
            server.update_name("GET /v1/images/{image_id}/render")
        tracing.flush()
    finally:
        tracing.reset_for_tests()
    (_, body), *_ = _Receiver.bodies
    request = parsed(body)
    resource = {a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "pm-test"
    got = {s.name: s for s in request.resource_spans[0].scope_spans[0].spans}
    server_span, encode = got["GET /v1/images/{image_id}/render"], got["render.encode"]
    assert encode.parent_span_id == server_span.span_id and not server_span.parent_span_id
    assert encode.trace_id == server_span.trace_id
    assert encode.attributes[0].value.string_value == "jpeg"


def test_batch_size_and_delay_come_from_opentelemetrys_variables(
    receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "3")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # ten minutes: never by the clock
    spans = finished_spans()
    batch = JsonBatchProcessor(
        JsonSpanExporter(receiver, timeout_s=5), spans[0].resource, spans[0].instrumentation_scope
    )
    for span in spans * 3:  # twelve spans: four full batches of three
        batch.on_end(span)
    batch.shutdown()
    sizes = [
        len(parsed(body).resource_spans[0].scope_spans[0].spans) for _, body in _Receiver.bodies
    ]
    assert sizes == [3] * 4


def test_the_export_thread_makes_its_client_early_and_a_forked_child_its_own(
    receiver: str,
) -> None:
    spans = finished_spans()
    batch = processor(receiver, spans)
    exporter = batch._exporter
    # the client (httpx, its TLS context) is made by the export thread as it starts,
    # before any batch is due
    wait_for(lambda: exporter._client is not None, timeout=10)
    parents = exporter._client
    pid = os.fork()
    if pid == 0:  # the child: its own client, and its spans leave through it
        code = 1
        try:
            wait_for(lambda: exporter._client not in (None, parents), timeout=10)
            batch.on_end(spans[0])
            batch.force_flush()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the receiver (served by this process) got the child's span
    assert [span["name"] for span in sent_spans()] == [spans[0].name]
    assert exporter._client is parents  # the parent's client is untouched
    batch.shutdown()
