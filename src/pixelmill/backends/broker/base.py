"""The broker contract.

A broker moves small :class:`TaskMessage` s (ids only: the DB holds the job) through
named queues, one per kind of work (``transform``, ``analyse``, ``segment``, ``train``),
each with a normal and a high-priority lane. Semantics every implementation keeps:

* :meth:`Broker.publish` returns only once the message is durably accepted
  (publisher confirms on RabbitMQ); otherwise it raises
  :class:`~pixelmill.errors.BackendUnavailable`.
* Delivery is **at least once**: a message is acknowledged only after its handler
  returns. A handler that raises is retried with exponential backoff (``min_backoff``
  doubling up to ``max_backoff``) up to ``max_retries`` times; a message whose worker
  died mid-run is delivered again, up to the delivery limit.
* A message that exhausts its retries or its delivery limit is **dead-lettered**: the
  consumer's ``on_dead_letter(message, reason)`` is called (once it returns, the dead
  letter is settled), so the job can fail with the reason instead of looping forever.
* :meth:`Consumer.stop` is graceful: no new messages are taken, in-flight handlers
  finish (or, past the timeout, their messages go back to the queue).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pixelmill.queues import QUEUES as QUEUES  # re-exported for the brokers

#: priorities at or above this go on a queue's high-priority lane
HIGH_PRIORITY = 5


@dataclass(frozen=True)
class TaskMessage:
    """The body of one broker message: which task of which job to run."""

    job_id: str
    idx: int
    #: W3C trace context (``traceparent``, ``tracestate``) of the submit, when tracing
    #: is on: the broker carries it with the message so the worker continues the trace
    trace: dict[str, str] | None = field(default=None, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "idx": self.idx}


@dataclass(frozen=True)
class Delivery:
    """One delivery of a message to a handler."""

    message: TaskMessage
    queue: str
    #: exception retries so far (0 on the first delivery)
    retries: int
    #: True when the broker delivers it again after a consumer died
    redelivered: bool
    #: exception retries this message may take in all (``None``: no limit known)
    max_retries: int | None = None

    @property
    def last_attempt(self) -> bool:
        """True when a raise now dead-letters the message instead of retrying it."""
        return self.max_retries is not None and self.retries >= self.max_retries


Handler = Callable[[Delivery], None]
DeadLetterHandler = Callable[[TaskMessage, str], None]


@dataclass(frozen=True)
class RetryPolicy:
    """Retries after a handler raised: ``min_backoff_s · 2**n`` (jittered) up to
    ``max_backoff_s``, at most ``max_retries`` times; ``delivery_limit`` bounds
    redeliveries after a worker died mid-run.

    Both brokers retry by this policy with Dramatiq's backoff formula: the RabbitMQ
    broker through Dramatiq's ``Retries`` middleware (:meth:`backoff_ms` are its
    parameters), the in-process broker through :meth:`retry_in_s`."""

    max_retries: int = 5
    min_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    delivery_limit: int = 5

    def backoff_ms(self) -> tuple[int, int]:
        """``(min, max)`` backoff in milliseconds, as Dramatiq's ``Retries`` takes them."""
        return max(1, int(self.min_backoff_s * 1000)), max(1, int(self.max_backoff_s * 1000))

    def retry_in_s(self, retries: int, max_retries: int | None = None) -> float | None:
        """Seconds to wait before retry number ``retries + 1``, or ``None`` when the
        retries (``max_retries``, default the policy's) are used up: dead-letter it."""
        from dramatiq.common import compute_backoff

        if retries >= (self.max_retries if max_retries is None else max_retries):
            return None
        least, most = self.backoff_ms()
        _, delay_ms = compute_backoff(retries, factor=least, max_backoff=most)
        return delay_ms / 1000


@runtime_checkable
class Consumer(Protocol):
    """A running consumption started by :meth:`Broker.serve`."""

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking messages; wait up to ``timeout_s`` for in-flight handlers."""

    def alive(self) -> bool:
        """True while it consumes: not stopped, its task threads running (liveness)."""


@runtime_checkable
class Broker(Protocol):
    """Carries task messages from submitters to workers (see the module docstring)."""

    policy: RetryPolicy
    #: True when messages outlive this process (RabbitMQ); False for the in-process
    #: broker, whose process must re-publish unfinished tasks from the DB at start and
    #: run them itself
    durable: bool

    def publish(
        self,
        queue: str,
        message: TaskMessage,
        *,
        priority: int = 0,
        max_retries: int | None = None,
    ) -> None:
        """Durably enqueue ``message`` on ``queue`` (priority 0..9; >= 5 is the high
        lane); ``max_retries`` overrides the policy for this message."""

    def serve(
        self,
        queues: Sequence[str],
        handler: Handler,
        *,
        on_dead_letter: DeadLetterHandler,
        threads: int = 4,
    ) -> Consumer:
        """Start consuming ``queues`` in background threads; returns the handle."""

    def depth(self, queue: str) -> int:
        """Messages waiting in ``queue`` (both lanes), as far as the broker knows."""

    def queue_stats(self) -> list[tuple[str, str, int, int]]:
        """``(queue, lane, ready messages, consumers)`` of each lane (``normal``,
        ``high``) of every queue, as far as the broker tells (the USE metrics)."""

    def ping(self) -> None:
        """Raise BackendUnavailable when the broker cannot be reached."""

    def close(self) -> None: ...
