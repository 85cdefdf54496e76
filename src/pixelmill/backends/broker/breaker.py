"""Broker publishing behind a circuit breaker. While RabbitMQ is unreachable a submit
does not wait for a connection timeout per task: publish fails fast with
:class:`~pixelmill.errors.BackendUnavailable`, the job stays in the database (it was
accepted durably there) and a worker re-publishes it once the broker is back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pixelmill.backends.breaker import CircuitBreaker
from pixelmill.backends.broker.base import (
    Broker,
    Consumer,
    DeadLetterHandler,
    Handler,
    RetryPolicy,
    TaskMessage,
)


class BreakerBroker:
    """A :class:`~pixelmill.backends.broker.base.Broker` whose ``publish`` is guarded;
    consuming is left to the broker's own reconnect loop."""

    def __init__(self, inner: Broker, breaker: CircuitBreaker) -> None:
        self.inner = inner
        self.breaker = breaker
        self.policy: RetryPolicy = inner.policy
        self.durable: bool = inner.durable

    def __getattr__(self, name: str) -> Any:
        # what is not in the Protocol (``purge``, ``queue_name``, ...) is the wrapped
        # broker's own, unguarded: admin and test helpers, not the request path
        if name == "inner":  # not set yet (copy, unpickling): no endless recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def publish(
        self,
        queue: str,
        message: TaskMessage,
        *,
        priority: int = 0,
        max_retries: int | None = None,
    ) -> None:
        self.breaker.call(
            self.inner.publish, queue, message, priority=priority, max_retries=max_retries
        )

    def serve(
        self,
        queues: Sequence[str],
        handler: Handler,
        *,
        on_dead_letter: DeadLetterHandler,
        threads: int = 4,
    ) -> Consumer:
        return self.inner.serve(queues, handler, on_dead_letter=on_dead_letter, threads=threads)

    def depth(self, queue: str) -> int:
        return self.inner.depth(queue)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()
