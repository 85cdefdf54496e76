"""OTLP/HTTP with the JSON encoding: the span exporter tracing uses by default.

The OpenTelemetry SDK's OTLP/HTTP exporter encodes spans to protobuf message by message
in Python, about 20-30 µs a span here, in the export thread of the process that serves
the requests; for a render of a few milliseconds with three spans that alone is 2-3 %
of its CPU. OTLP/HTTP also accepts the JSON encoding of the same messages
(``Content-Type: application/json``; the OTLP specification, "JSON Protobuf Encoding":
lowerCamelCase field names, trace and span ids as hex, enums as integers, 64-bit
integers as decimal strings), which orjson writes in about 5 µs a span. Every OTLP
receiver accepts both (the Collector, Jaeger, Tempo, Alloy, vendors' agents);
``observability.tracing.protocol = "http/protobuf"`` switches back to the SDK's
exporter. ``tests/unit/observability/test_otlp_json.py`` proves the JSON is the same
``ExportTraceServiceRequest`` the SDK's encoder builds.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

if TYPE_CHECKING:
    import httpx
    from opentelemetry.sdk.trace import ReadableSpan

log = logging.getLogger(__name__)

#: SpanKind (INTERNAL 0 .. CONSUMER 4) to OTLP's Span.SpanKind (1 .. 5)
_KIND_OFFSET = 1
#: Span.flags: the is-remote bit of the parent is known (256), and it is set (512)
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
#: answers worth another try (the OTLP specification's retryable codes)
RETRYABLE = frozenset({429, 502, 503, 504})


def _value(value: Any) -> dict[str, Any]:
    """An attribute value as OTLP ``AnyValue``."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, bytes):
        import base64

        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": _attributes(value)}}
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {} if value is None else {"stringValue": str(value)}


#: the JSON text of scalar attributes' ``KeyValue`` and of span names, reused between
#: spans: most repeat (routes, methods, statuses, formats, stage names), and encoding them
#: is most of a span's encoding; bounded, cleared when full
_kv_text: dict[tuple[str, Any, type], str] = {}
_name_text: dict[str, str] = {}
_CACHE_MAX = 4096
_SCALARS = (str, bool, int, float)


def _key_value(key: str, value: Any) -> dict[str, Any]:
    return {"key": str(key), "value": _value(value)}


def _attributes(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not attributes:
        return []
    return [_key_value(k, v) for k, v in attributes.items()]


def _kv_json(key: str, value: Any) -> str:
    if type(value) not in _SCALARS:
        return orjson.dumps(_key_value(key, value)).decode()
    entry = (key, value, type(value))
    found = _kv_text.get(entry)
    if found is None:
        if len(_kv_text) >= _CACHE_MAX:
            _kv_text.clear()
        found = _kv_text[entry] = orjson.dumps(_key_value(key, value)).decode()
    return found


def _string(value: str) -> str:
    """``value`` as a JSON string (escaped by orjson)."""
    found = _name_text.get(value)
    if found is None:
        if len(_name_text) >= _CACHE_MAX:
            _name_text.clear()
        found = _name_text[value] = orjson.dumps(value).decode()
    return found


def _flags(parent: Any) -> int:
    return _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)


def readable_json(span: ReadableSpan) -> bytes:
    """An SDK span as the JSON of one OTLP ``Span``."""
    ctx = span.get_span_context()
    assert ctx is not None
    return span_json(
        ctx,
        span.parent,
        span.name,
        span.kind,
        span.start_time,
        span.end_time,
        span.attributes,
        span.events,
        span.status,
        span.links,
        (span.dropped_attributes, span.dropped_events, span.dropped_links),
    )


def span_json(
    ctx: Any,
    parent: Any,
    name: str,
    kind: Any,
    start: int | None,
    end: int | None,
    attributes: Mapping[str, Any] | None,
    events: Sequence[Any],
    status: Any,
    links: Sequence[Any] = (),
    dropped: tuple[int, int, int] = (0, 0, 0),
) -> bytes:
    """One OTLP ``Span`` as JSON, from a span's parts (an SDK span's, or a lean span's as
    it ends: ``observability/span_batch.py``). Written as text around the reused pieces
    (attributes, names): building the dict for orjson took twice as long."""
    # _value_: the member's value as Enum stores it (``.value`` is a descriptor call)
    parts = [
        f'{{"traceId":"{ctx.trace_id:032x}","spanId":"{ctx.span_id:016x}",'
        f'"name":{_string(name)},"kind":{kind._value_ + _KIND_OFFSET},'
        f'"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","flags":{_flags(parent)}'
    ]
    if parent is not None:
        parts.append(f',"parentSpanId":"{parent.span_id:016x}"')
    if ctx.trace_state:
        state = ",".join(f"{k}={v}" for k, v in ctx.trace_state.items())
        parts.append(f',"traceState":{orjson.dumps(state).decode()}')
    if attributes:
        parts.append(f',"attributes":[{",".join([_kv_json(k, v) for k, v in attributes.items()])}]')
    if events:
        parts.append(f',"events":{orjson.dumps([_event(e) for e in events]).decode()}')
    if links:
        parts.append(f',"links":{orjson.dumps([_link(link) for link in links]).decode()}')
    code = status.status_code._value_
    if code or status.description:
        found: dict[str, Any] = {"code": code} if code else {}
        if status.description:
            found["message"] = status.description
        parts.append(f',"status":{orjson.dumps(found).decode()}}}')
    else:
        parts.append(',"status":{}}')
    if any(dropped):  # before the closing brace
        parts[-1] = parts[-1][:-1]
        for field, count in zip(_DROPPED, dropped, strict=True):
            if count:
                parts.append(f',"{field}":{count}')
        parts.append("}")
    return "".join(parts).encode()


_DROPPED = ("droppedAttributesCount", "droppedEventsCount", "droppedLinksCount")


def _with_attributes(out: dict[str, Any], item: Any) -> dict[str, Any]:
    """``out`` with ``item``'s attributes and dropped-attribute count (an event's, a
    link's), each only when there are any, as protobuf leaves defaults out."""
    if item.attributes:
        out["attributes"] = _attributes(item.attributes)
    if item.dropped_attributes:
        out["droppedAttributesCount"] = item.dropped_attributes
    return out


def _event(event: Any) -> dict[str, Any]:
    return _with_attributes({"name": event.name, "timeUnixNano": str(event.timestamp)}, event)


def _link(link: Any) -> dict[str, Any]:
    out = {
        "traceId": format(link.context.trace_id, "032x"),
        "spanId": format(link.context.span_id, "016x"),
        "flags": _flags(link.context),
    }
    return _with_attributes(out, link)


def _scope(scope: Any) -> dict[str, Any]:
    if scope is None:
        return {}
    out: dict[str, Any] = {"name": scope.name}
    if scope.version:
        out["version"] = scope.version
    if scope.attributes:
        out["attributes"] = _attributes(scope.attributes)
    return out


def encode(spans: Sequence[ReadableSpan]) -> bytes:
    """``spans`` as the JSON of an OTLP ``ExportTraceServiceRequest``, grouped by
    resource and instrumentation scope as the protobuf encoder groups them."""
    grouped: dict[int, tuple[Any, dict[int, tuple[Any, list[orjson.Fragment]]]]] = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope
        by_scope = grouped.setdefault(id(resource), (resource, {}))[1]
        by_scope.setdefault(id(scope), (scope, []))[1].append(orjson.Fragment(readable_json(span)))
    resource_spans = [
        _resource_spans(
            resource, [_scope_spans(scope, found) for scope, found in by_scope.values()]
        )
        for resource, by_scope in grouped.values()
    ]
    return orjson.dumps({"resourceSpans": resource_spans})


def _scope_spans(scope: Any, spans: list[Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"scope": _scope(scope), "spans": spans}
    if scope is not None and scope.schema_url:
        entry["schemaUrl"] = scope.schema_url
    return entry


def _resource_spans(resource: Any, scope_spans: list[dict[str, Any]]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "resource": {"attributes": _attributes(resource.attributes)},
        "scopeSpans": scope_spans,
    }
    if resource.schema_url:
        item["schemaUrl"] = resource.schema_url
    return item


def envelope(resource: Any, scope: Any) -> tuple[bytes, bytes]:
    """The bytes before and after the spans of one resource's and one scope's request:
    ``head + b",".join(encoded spans) + tail`` is a whole ``ExportTraceServiceRequest``."""
    marker = "\x00spans\x00"
    body = orjson.dumps({"resourceSpans": [_resource_spans(resource, [_scope_spans(scope, [])])]})
    head, tail = body.replace(b'"spans":[]', marker.encode(), 1).split(marker.encode())
    return head + b'"spans":[', b"]" + tail


class JsonSpanExporter(SpanExporter):
    """POSTs each batch as OTLP/JSON to ``endpoint`` (a keep-alive connection), retrying
    the retryable answers and lost connections with jittered exponential backoff until
    ``timeout_s`` has passed since the batch's first try. A batch that still fails is
    dropped with a warning: tracing never blocks or fails the work it traces."""

    def __init__(self, endpoint: str, *, timeout_s: float = 10.0) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._stopped = threading.Event()

    def _http(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._client_lock:  # the export thread's warm-up and a flush, at once
                if self._client is None:
                    import httpx

                    self._client = httpx.Client(
                        timeout=self.timeout_s, headers={"Content-Type": "application/json"}
                    )
                client = self._client
        return client

    def warm(self) -> None:
        """Make the HTTP client now, on the export thread: importing httpx and building
        its TLS context (loading the CA bundle) take tens of milliseconds of CPU once,
        which the first batch, and through the GIL the requests of that moment, would
        pay otherwise."""
        self._http()

    def forget_client(self) -> None:
        """In a forked child: the parent's client and its connections stay the parent's;
        the child makes its own."""
        self._client = None
        self._client_lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._stopped.is_set():
            return SpanExportResult.FAILURE
        return self.send(encode(spans), len(spans))

    def send(self, body: bytes, count: int) -> SpanExportResult:
        """POST one encoded request of ``count`` spans, retrying as the class says."""
        if self._stopped.is_set():
            return SpanExportResult.FAILURE
        deadline = time.monotonic() + self.timeout_s
        delay = 0.5
        while True:
            problem = self._post(body)
            if problem is None:
                return SpanExportResult.SUCCESS
            retryable, why = problem
            wait = delay * random.uniform(0.5, 1.5)
            if not retryable or time.monotonic() + wait > deadline or self._stopped.wait(wait):
                log.warning("traces not exported (%d spans): %s", count, why)
                return SpanExportResult.FAILURE
            delay *= 2

    def _post(self, body: bytes) -> tuple[bool, str] | None:
        """None when the receiver took the batch, else (retryable, why)."""
        import httpx

        try:
            resp = self._http().post(self.endpoint, content=body)
        except httpx.HTTPError as err:
            return True, f"{type(err).__name__}: {err}"
        if resp.is_success:
            return None
        return resp.status_code in RETRYABLE, f"{self.endpoint} answered {resp.status_code}"

    def shutdown(self) -> None:
        self._stopped.set()
        if self._client is not None:
            self._client.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


__all__ = ["RETRYABLE", "JsonSpanExporter", "encode", "envelope", "readable_json", "span_json"]
