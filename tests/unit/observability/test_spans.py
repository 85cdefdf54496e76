"""The lean spans pixelmill records: what reaches the exporter is what the SDK's own
spans would give a trace viewer (parents, sampling, status, events), exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pixelmill.observability import tracing
from tests.unit.observability.test_tracing import settings


@pytest.fixture
def exported() -> Iterator[Any]:
    tracing.reset_for_tests()
    assert tracing.configure_tracing(settings(ratio=0.0))  # roots dropped, callers obeyed
    exporter = tracing.memory_exporter()
    assert exporter is not None
    yield exporter.get_finished_spans
    tracing.reset_for_tests()


def test_a_callers_sampled_trace_is_recorded_though_the_ratio_drops_new_ones(
    exported: Any,
) -> None:
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with tracing.http_server_span("GET", "/x", {"traceparent": caller}) as server:
        with tracing.stage("render.encode"):
            pass
        server.update_name("GET /v1/images/{image_id}/render")
    with tracing.http_server_span("GET", "/y", {}):  # a new trace: dropped at ratio 0
        assert tracing.stage("render.encode") is tracing.span("x")
    spans = {s.name: s for s in exported()}
    assert set(spans) == {"GET /v1/images/{image_id}/render", "render.encode"}
    server_span = spans["GET /v1/images/{image_id}/render"]
    assert server_span.parent.span_id == 0x00F067AA0BA902B7 and server_span.parent.is_remote
    assert server_span.context.trace_id == spans["render.encode"].context.trace_id
    assert spans["render.encode"].parent.span_id == server_span.context.span_id
    assert (
        server_span.kind.name == "SERVER"
        and server_span.resource.attributes["service.name"] == "pm-test"
    )


def test_a_span_is_exported_once_and_closed_to_changes_when_it_ends(exported: Any) -> None:
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with tracing.http_server_span("GET", "/x", {"traceparent": caller}) as span:
        span.set_attribute("http.response.status_code", 200)
        span.set_attribute("absent", None)  # dropped, as the SDK drops it
    span.set_attribute("late", 1)
    span.end()
    (only,) = exported()
    assert dict(only.attributes) == {
        "http.request.method": "GET",
        "url.path": "/x",
        "http.response.status_code": 200,
    }
    assert only.end_time >= only.start_time > 0
