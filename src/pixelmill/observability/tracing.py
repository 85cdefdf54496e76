"""Traces with the OpenTelemetry SDK, off unless ``observability.tracing.exporter`` says.

Off (the default), :func:`span` is a shared no-op context manager and nothing of
OpenTelemetry is imported; on, the composition root calls :func:`configure_tracing`
once per process and spans go over OTLP/HTTP (batched; JSON by default, see
:mod:`pixelmill.observability.otlp_json`, or the SDK's protobuf exporter) or, for
tests, to an in-memory exporter (:func:`memory_exporter`).

The open span lives in pixelmill's own context variable (``context.current_span``, which
also gives log lines their ``trace_id``), not in OpenTelemetry's context, where reading the
current span takes four calls and making one current a new context object.
OpenTelemetry's propagator still reads and writes the W3C headers.

A trace crosses the broker in the message: :func:`inject` writes the W3C
``traceparent``/``tracestate`` of the current span into a dict the broker carries with
the task, and the worker continues it with :func:`continued`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pixelmill.observability import context

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from pixelmill.observability.spans import Recorder

log = logging.getLogger(__name__)
_NULL = contextlib.nullcontext()
#: the open span, in pixelmill's own context variable (not OpenTelemetry's context: its
#: API takes several calls and a new context object per span made current)
_current = context.current_span
_memory: InMemorySpanExporter | None = None
_provider: Any = None
_recorder: Recorder | None = None


class _Api:
    """The OpenTelemetry names used per span, looked up once tracing is on (an import
    statement per call costs as much as a third of an unsampled span)."""

    SpanKind: Any = None
    Status: Any = None
    StatusCode: Any = None
    NonRecordingSpan: Any = None

    @classmethod
    def load(cls) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        cls.SpanKind = trace.SpanKind
        cls.Status = Status
        cls.StatusCode = StatusCode
        cls.NonRecordingSpan = trace.NonRecordingSpan


_api = _Api
_lock = threading.Lock()


class TracingSettings(Protocol):
    """What tracing needs of :class:`pixelmill.settings.TracingSettings`."""

    @property
    def exporter(self) -> str: ...

    @property
    def endpoint(self) -> str: ...

    @property
    def sample_ratio(self) -> float: ...

    @property
    def protocol(self) -> str: ...

    @property
    def service_name(self) -> str: ...


def enabled() -> bool:
    return _recorder is not None


def configure_tracing(settings: TracingSettings) -> bool:
    """Install the tracer provider ``settings`` ask for (once per process; later calls
    keep the first). Returns whether tracing is on."""
    global _memory, _provider, _recorder
    if settings.exporter == "none":
        return _recorder is not None
    with _lock:
        if _recorder is not None:
            return True
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SimpleSpanProcessor,
            SpanProcessor,
        )
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        )
        scope = InstrumentationScope("pixelmill")
        processor: SpanProcessor
        if settings.exporter == "memory":
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter,
            )

            _memory = InMemorySpanExporter()
            processor = SimpleSpanProcessor(_memory)
        elif settings.protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.endpoint))
        else:
            from pixelmill.observability.otlp_json import JsonSpanExporter
            from pixelmill.observability.span_batch import JsonBatchProcessor

            processor = JsonBatchProcessor(
                JsonSpanExporter(settings.endpoint), provider.resource, scope
            )
        provider.add_span_processor(processor)
        # not made the global provider: libraries that trace themselves when one is set
        # (FastAPI's native telemetry) would add a second server span per request
        from pixelmill.observability.spans import Recorder

        _Api.load()
        _provider = provider
        # pixelmill's spans are the lean kind, ended into this processor (spans.py)
        _recorder = Recorder(provider, processor, scope, settings.sample_ratio)
        return True


def flush(timeout_ms: int = 5000) -> None:
    """Export the spans still buffered (a process about to exit calls it)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def memory_exporter() -> InMemorySpanExporter | None:
    """The in-memory exporter (exporter 'memory'), for tests to read finished spans."""
    return _memory


def span(name: str, attributes: Mapping[str, Any] | None = None) -> Any:
    """A context manager timing ``name`` as a child of the current span (a shared no-op
    when tracing is off). Attribute values must be str, bool, int or float; ids are fine
    here (spans are not metrics: they carry no label-cardinality cost)."""
    if _recorder is None or (parent := _child_parent()) is _DROPPED:
        return _NULL
    return _Scope(_recorder.start(name, parent, attributes=attributes))


_DROPPED = object()


def _child_parent() -> Any:
    """The span context a child of the current span gets (None: it starts a trace), or
    ``_DROPPED`` inside a trace the sampler dropped (an unsampled root, or a caller's
    context, which only the server, consumer and producer spans continue): parent-based
    sampling would drop the child anyway, and making it is most of a span's cost."""
    current = _current.get()
    if current is None:
        return None
    return current.get_span_context() if current.is_recording() else _DROPPED


def _context_of(span: Any) -> Any:
    return None if span is None else span.get_span_context()


class _Scope:
    """Opens ``span`` for a ``with`` block, as the SDK's ``start_as_current_span`` does
    (made current unless ``current`` is false; an ``Exception`` is recorded on it and
    sets its status to ERROR; ended on exit) for a fifth less CPU: no generator-based
    context manager. A span that is not made current (a stage: nothing is traced inside
    it) also saves the context switch."""

    __slots__ = ("_current", "_span", "_token")

    def __init__(self, span: Any, current: bool = True) -> None:
        self._span = span
        self._current = current
        self._token: Any = None

    def __enter__(self) -> Any:
        if self._current:
            self._token = _current.set(self._span)
        return self._span

    def __exit__(self, kind: Any, err: BaseException | None, tb: Any) -> None:
        span = self._span
        if self._token is not None:
            _restore(self._token)
        if isinstance(err, Exception) and span.is_recording():
            span.record_exception(err)
            span.set_status(_api.Status(_api.StatusCode.ERROR, f"{kind.__name__}: {err}"))
        span.end()


def _restore(token: Any) -> None:
    """Make the span current before a block current again: a block left in another
    context than it was entered in (a misuse) is logged, as OpenTelemetry's detach does."""
    try:
        _current.reset(token)
    except ValueError:
        log.exception("a span was ended in another context than it was opened in")


def stage(name: str, attributes: Mapping[str, Any] | None = None) -> Any:
    """Like :func:`span` for a block that opens no spans of its own (a render stage, a
    cache call, an inference batch): anything traced inside would be a sibling, not a
    child."""
    if _recorder is None or (parent := _child_parent()) is _DROPPED:
        return _NULL
    return _Scope(_recorder.start(name, parent, attributes=attributes), current=False)


def set_attribute(key: str, value: Any) -> None:
    """Add ``key=value`` to the current span (nothing when tracing is off)."""
    current = _current.get()
    if current is not None:
        current.set_attribute(key, value)


def inject() -> dict[str, str] | None:
    """The current trace context as W3C headers, for a message; ``None`` when off."""
    current = _current.get()
    if _recorder is None or current is None:
        return None
    from opentelemetry import propagate, trace

    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(current))
    return carrier or None


def _extracted(carrier: Mapping[str, str]) -> Any:
    """The caller's span context in ``carrier`` (W3C headers), or None."""
    from opentelemetry import propagate, trace

    found = trace.get_current_span(propagate.extract(dict(carrier))).get_span_context()
    return found if found.is_valid else None


@contextlib.contextmanager
def continued(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Run the block inside the trace ``carrier`` (from :func:`inject`) belongs to."""
    remote = _extracted(carrier) if _recorder is not None and carrier else None
    if remote is None:
        yield
        return
    token = _current.set(_api.NonRecordingSpan(remote))
    try:
        yield
    finally:
        _restore(token)


def http_server_span(method: str, path: str, carrier: Mapping[str, str]) -> Any:
    """A SERVER span for one HTTP request, continuing a caller's ``traceparent`` (named
    by the method; the caller renames it by route once routing matched)."""
    if _recorder is None:
        return _NULL
    return _Scope(
        _recorder.start(
            method,
            _extracted(carrier) if carrier else _context_of(_current.get()),
            _api.SpanKind.SERVER,
            {"http.request.method": method, "url.path": path},
        )
    )


def producer_span(name: str, attributes: Mapping[str, Any]) -> Any:
    """A PRODUCER span (publishing a message)."""
    if _recorder is None:
        return _NULL
    parent = _context_of(_current.get())
    return _Scope(_recorder.start(name, parent, _api.SpanKind.PRODUCER, attributes))


def consumer_span(name: str, attributes: Mapping[str, Any]) -> Any:
    """A CONSUMER span (handling a message), inside the context :func:`continued` set."""
    if _recorder is None:
        return _NULL
    parent = _context_of(_current.get())
    return _Scope(_recorder.start(name, parent, _api.SpanKind.CONSUMER, attributes))


def db_span(statement: str, system: str) -> Any:
    """A CLIENT span for one SQL statement: its operation (``db SELECT``), never its
    text or values."""
    if _recorder is None or (parent := _child_parent()) is _DROPPED:
        return _NULL
    words = statement.lstrip().split(None, 1)
    operation = words[0].upper() if words else "SQL"
    return _Scope(
        _recorder.start(
            f"db {operation}",
            parent,
            _api.SpanKind.CLIENT,
            {"db.system.name": system, "db.operation.name": operation},
        ),
        current=False,
    )


def instrument_engine(engine: Any, system: str) -> None:
    """A CLIENT span per SQL statement of a SQLAlchemy ``engine`` (its operation only,
    never the statement's values). Only when tracing is on."""
    if _recorder is None:
        return
    from sqlalchemy import event

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        cm = db_span(statement, system)
        cm.__enter__()
        conn.info.setdefault("pm_spans", []).append(cm)

    def after(conn: Any, *_: Any) -> None:
        spans = conn.info.get("pm_spans")
        if spans:
            spans.pop().__exit__(None, None, None)

    def failed(context: Any) -> None:
        conn = context.connection
        spans = conn.info.get("pm_spans") if conn is not None else None
        if spans:
            err = context.original_exception
            spans.pop().__exit__(type(err), err, None)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)


def reset_for_tests() -> None:
    """Forget the tracer (tests that switch tracing on restore the default)."""
    global _memory, _provider, _recorder
    _memory = None
    _provider = None
    _recorder = None


__all__ = [
    "configure_tracing",
    "consumer_span",
    "continued",
    "db_span",
    "enabled",
    "flush",
    "http_server_span",
    "inject",
    "instrument_engine",
    "memory_exporter",
    "producer_span",
    "reset_for_tests",
    "set_attribute",
    "span",
    "stage",
]
