"""Spans encoded as they end, exported in batches of bytes: the OTLP/JSON span processor.

The SDK's ``BatchSpanProcessor`` queues span objects (a ``ReadableSpan`` and its
attribute dict, events, context) and encodes them later in its export thread. Queued
objects outlive a few garbage collections, so they are walked by each collection and
promoted to the oldest generation, which then fills and is collected more often; and a
``ReadableSpan`` is built per span only to be read once. This processor takes a lean
span's parts as it ends (:meth:`JsonBatchProcessor.add`, from ``spans.LightSpan.end``),
encodes them to the span's OTLP/JSON bytes (``otlp_json.span_json``, the same encoding
as the exporter's, so the request is byte-for-byte what ``otlp_json.encode`` writes) and
queues the bytes, which the garbage collector does not track. Its thread makes the HTTP
client as it starts (not when the first batch is due) and joins up to
``max_batch`` of them between the request's head and tail and POSTs them with the
:class:`~pixelmill.observability.otlp_json.JsonSpanExporter` (its retries and timeout).

As the SDK's processor (and from the same ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``,
``OTEL_BSP_MAX_QUEUE_SIZE`` and ``OTEL_BSP_SCHEDULE_DELAY`` variables, default 512, 2048
and 5000 ms): a batch leaves when ``max_batch`` spans are queued or ``delay_s`` after
the last one left; at most ``max_queue`` wait (later ones are dropped
and counted in a warning: tracing never holds up the work it traces); ``force_flush``
and ``shutdown`` export what is queued; a forked child starts with an empty queue and
its own thread. SDK spans handed to :meth:`on_end` are encoded the same way.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.environment_variables import (
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_SCHEDULE_DELAY,
)
from opentelemetry.sdk.trace import SpanProcessor

from pixelmill.observability.otlp_json import envelope, readable_json, span_json

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from opentelemetry.sdk.trace import ReadableSpan

    from pixelmill.observability.otlp_json import JsonSpanExporter

log = logging.getLogger(__name__)


def _setting(name: str, default: int) -> int:
    """A positive integer from the environment variable the SDK's batch processor reads
    (OpenTelemetry's ``OTEL_BSP_*``), else ``default``."""
    value = os.environ.get(name, "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    if value:
        log.warning("%s=%r is not a positive integer: %d is used", name, value, default)
    return default


class JsonBatchProcessor(SpanProcessor):
    """See the module's text."""

    def __init__(
        self,
        exporter: JsonSpanExporter,
        resource: Any,
        scope: Any,
        *,
        max_batch: int | None = None,
        max_queue: int | None = None,
        delay_s: float | None = None,
    ) -> None:
        self._exporter = exporter
        self._head, self._tail = envelope(resource, scope)
        self._max_batch = max_batch or _setting(OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512)
        self._max_queue = max_queue or _setting(OTEL_BSP_MAX_QUEUE_SIZE, 2048)
        self._delay_s = delay_s or _setting(OTEL_BSP_SCHEDULE_DELAY, 5000) / 1000
        self._stopped = False
        self._start()
        ref = weakref.WeakMethod(self._forked)
        os.register_at_fork(after_in_child=lambda: (method := ref()) and method())

    def _forked(self) -> None:
        self._exporter.forget_client()
        self._start()

    def _start(self) -> None:
        """A fresh queue and export thread (at start, and in a forked child, where the
        parent's thread does not exist and its queue belongs to the parent)."""
        self._queue: deque[bytes] = deque()
        self._dropped = 0
        self._wake = threading.Event()
        self._export_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="pm-span-export", daemon=True)
        self._thread.start()

    def add(
        self,
        context: Any,
        parent: Any,
        name: str,
        kind: Any,
        start: int,
        end: int,
        attributes: Mapping[str, Any],
        events: Sequence[Any],
        status: Any,
    ) -> None:
        """Queue one ended span, encoded (the lean span's ``end``)."""
        self._put(span_json(context, parent, name, kind, start, end, attributes, events, status))

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is not None and context.trace_flags.sampled:
            self._put(readable_json(span))

    def _put(self, encoded: bytes) -> None:
        queue = self._queue
        if len(queue) >= self._max_queue or self._stopped:
            self._dropped += 1
            return
        queue.append(encoded)
        if len(queue) >= self._max_batch and not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        try:
            self._exporter.warm()
        except Exception:  # a send tries again and says why; the thread must live on
            log.exception("the OTLP exporter's HTTP client could not be made")
        while not self._stopped:
            full = self._wake.wait(self._delay_s)
            self._wake.clear()
            self._export_queued(full_only=full)

    def _export_queued(self, *, full_only: bool = False) -> None:
        """Send what is queued, ``max_batch`` spans a request; with ``full_only``, full
        batches only (a batch filled up: the rest waits for the next one or the delay,
        rather than going out a few spans a request)."""
        with self._export_lock:
            queue = self._queue
            while len(queue) >= (self._max_batch if full_only else 1):
                batch = [queue.popleft() for _ in range(min(self._max_batch, len(queue)))]
                self._exporter.send(self._head + b",".join(batch) + self._tail, len(batch))
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                log.warning("%d spans dropped: more than %d were waiting", dropped, self._max_queue)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self._export_queued()
        return True

    def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=self._delay_s)
        self._export_queued()
        self._exporter.shutdown()


__all__ = ["JsonBatchProcessor"]
