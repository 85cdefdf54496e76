"""The OTLP/JSON span exporter: its JSON is the very ``ExportTraceServiceRequest`` the
OpenTelemetry SDK's protobuf encoder builds, and it delivers batches to a real HTTP
receiver, retrying what OTLP calls retryable and giving up on the rest."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import Link, SpanContext, TraceFlags, TraceState

from pixelmill.observability.otlp_json import JsonSpanExporter, encode


def finished_spans() -> list[Any]:
    """Spans with everything OTLP carries: kinds, a remote parent with a trace state,
    nesting, every attribute type, an event, a link, an error status."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "pm-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("pixelmill", "1.2.3")
    remote = SpanContext(
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
        0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "x1")]),
    )
    parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    attributes = {"s": "é", "i": 2**40, "f": 0.25, "b": True, "a": ["x", "y"], "n": [1, 2]}
    with tracer.start_as_current_span(
        "GET /v1/images/{image_id}/render",
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes=attributes,
        links=[Link(remote, {"why": "batch"})],
    ) as server:
        server.add_event("cache miss", {"key": "k1"})
        with tracer.start_as_current_span("render.encode", kind=trace.SpanKind.INTERNAL):
            pass
        with pytest.raises(ValueError), tracer.start_as_current_span("db SELECT"):
            raise ValueError("broken")
    with tracer.start_as_current_span("publish", kind=trace.SpanKind.PRODUCER):
        pass
    return list(memory.get_finished_spans())


def parsed(body: bytes) -> ExportTraceServiceRequest:
    """OTLP/JSON parsed as protobuf: its hex ids turned into the base64 that the
    generic protobuf JSON mapping expects (the one place OTLP/JSON departs from it)."""
    data = json.loads(body)
    for resource in data["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for item in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in item:
                            item[key] = base64.b64encode(bytes.fromhex(item[key])).decode()
    return json_format.ParseDict(data, ExportTraceServiceRequest())


def test_the_json_is_the_request_the_sdks_protobuf_encoder_builds() -> None:
    spans = finished_spans()
    ours = parsed(encode(spans))
    assert ours == encode_spans(spans)
    # and it says what a trace viewer shows: ids in hex, the remote parent, the error
    body = json.loads(encode(spans))
    sent = {s["name"]: s for s in body["resourceSpans"][0]["scopeSpans"][0]["spans"]}
    server = sent["GET /v1/images/{image_id}/render"]
    assert server["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server["parentSpanId"] == "00f067aa0ba902b7"
    assert server["traceState"] == "vendor=x1"
    assert sent["db SELECT"]["status"]["code"] == 2  # ERROR
    assert sent["db SELECT"]["events"][0]["name"] == "exception"


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver answering each POST with the next scripted status."""

    protocol_version = "HTTP/1.1"
    script: list[int] = []
    bodies: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Receiver.bodies.append((self.headers.get("Content-Type", ""), body))
        status = _Receiver.script.pop(0) if _Receiver.script else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.script, _Receiver.bodies = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/traces"
    httpd.shutdown()
    httpd.server_close()


def test_a_batch_reaches_the_receiver_as_json(receiver: str) -> None:
    exporter = JsonSpanExporter(receiver)
    spans = finished_spans()
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.export(spans[:1]) == SpanExportResult.SUCCESS  # the same connection
    exporter.shutdown()
    (kind, body), (_, second) = _Receiver.bodies
    assert kind == "application/json"
    assert parsed(body) == encode_spans(spans)
    assert len(parsed(second).resource_spans[0].scope_spans[0].spans) == 1


def test_a_busy_receiver_is_tried_again_and_a_refusal_is_not(receiver: str) -> None:
    exporter = JsonSpanExporter(receiver, timeout_s=5)
    spans = finished_spans()
    _Receiver.script = [503, 429]
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert len(_Receiver.bodies) == 3
    _Receiver.script = [400]
    assert exporter.export(spans) == SpanExportResult.FAILURE
    assert len(_Receiver.bodies) == 4  # a bad request is not sent again
    exporter.shutdown()
    assert exporter.export(spans) == SpanExportResult.FAILURE  # after shutdown: nothing
    assert len(_Receiver.bodies) == 4


def test_an_unreachable_receiver_costs_the_timeout_and_no_more() -> None:
    exporter = JsonSpanExporter("http://127.0.0.1:9/v1/traces", timeout_s=1.5)
    started = time.monotonic()
    assert exporter.export(finished_spans()) == SpanExportResult.FAILURE
    assert time.monotonic() - started < 3


def test_dropped_counts_are_encoded_as_the_sdk_encodes_them() -> None:
    from opentelemetry.sdk.trace import SpanLimits

    memory = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_attributes=1, max_events=1))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("pixelmill").start_as_current_span(
        "s", attributes={"a": 1, "b": 2}
    ) as s:
        s.add_event("one")
        s.add_event("two")
        s.set_status(trace.Status(trace.StatusCode.ERROR, "broken"))
    spans = list(memory.get_finished_spans())
    assert spans[0].dropped_attributes == 1 and spans[0].dropped_events == 1
    assert parsed(encode(spans)) == encode_spans(spans)
