"""Spans as an operator reads them in a trace viewer: nesting, errors, stage spans, and
nothing at all when tracing is off or the sampler dropped the trace."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from pixelmill.observability import tracing


def settings(exporter: str = "memory", ratio: float = 1.0) -> Any:
    return SimpleNamespace(
        exporter=exporter,
        endpoint="http://127.0.0.1:9/v1/traces",
        protocol="http/json",
        sample_ratio=ratio,
        service_name="pm-test",
    )


@pytest.fixture
def finished() -> Iterator[Any]:
    tracing.reset_for_tests()
    assert tracing.configure_tracing(settings())
    exporter = tracing.memory_exporter()
    assert exporter is not None
    yield lambda: {s.name: s for s in exporter.get_finished_spans()}
    tracing.reset_for_tests()


def test_spans_nest_and_stages_stay_leaves(finished: Any) -> None:
    with tracing.http_server_span("GET", "/v1/images/x/render", {}) as server:
        # anything traced inside a stage is its sibling, not its child
        with tracing.stage("render.decode_ops", {"pixelmill.steps": 2}), tracing.span("job.step"):
            pass
        with tracing.span("job.submit"), tracing.stage("render.encode"):
            pass
        server.set_attributes({"http.route": "/v1/images/{image_id}/render"})
    spans = finished()
    root = spans["GET"].context.span_id
    assert spans["render.decode_ops"].parent.span_id == root
    assert spans["render.decode_ops"].attributes["pixelmill.steps"] == 2
    assert spans["job.step"].parent.span_id == root
    assert spans["render.encode"].parent.span_id == spans["job.submit"].context.span_id
    assert spans["GET"].attributes["http.route"] == "/v1/images/{image_id}/render"
    assert all(s.end_time is not None for s in spans.values())


def test_an_error_is_recorded_on_the_span_it_escapes(finished: Any) -> None:
    with (
        pytest.raises(KeyError),
        tracing.http_server_span("GET", "/x", {}),
        tracing.stage("render.fetch"),
    ):
        raise KeyError("images/abc")
    spans = finished()
    for name in ("render.fetch", "GET"):
        assert spans[name].status.status_code.name == "ERROR"
        assert spans[name].status.description == "KeyError: 'images/abc'"
        assert spans[name].events[0].name == "exception"
    # and the context is restored: a new span after it starts a new trace
    with tracing.span("later"):
        pass
    assert finished()["later"].parent is None


def test_a_caller_trace_is_continued() -> None:
    tracing.reset_for_tests()
    try:
        tracing.configure_tracing(settings())
        caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        with tracing.http_server_span("GET", "/x", {"traceparent": caller}):
            carrier = tracing.inject()
        assert carrier is not None
        assert carrier["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    finally:
        tracing.reset_for_tests()


def test_a_dropped_trace_makes_no_child_spans() -> None:
    tracing.reset_for_tests()
    try:
        tracing.configure_tracing(settings(ratio=0.0))
        with tracing.http_server_span("GET", "/x", {}):
            assert tracing.stage("render.encode") is tracing.span("job.submit")  # no-ops
        exporter = tracing.memory_exporter()
        assert exporter is not None and exporter.get_finished_spans() == ()
    finally:
        tracing.reset_for_tests()


def test_off_every_span_is_one_shared_no_op() -> None:
    tracing.reset_for_tests()
    assert not tracing.configure_tracing(settings(exporter="none"))
    assert tracing.stage("a") is tracing.span("b") is tracing.http_server_span("GET", "/", {})
    assert tracing.inject() is None
