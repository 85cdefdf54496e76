"""RabbitMQ broker: Dramatiq on quorum queues with a delivery limit and a dead-letter queue.

Queues: ``NAMESPACE.QUEUE`` and its high-priority lane ``NAMESPACE.QUEUE.high`` for each
of transform / analyse / segment / train, plus Dramatiq's delay queue (``.DQ``, where
retries wait out their backoff) and dead-letter queue (``.XQ``) of each.

* **Quorum queues with ``x-delivery-limit``.** Dramatiq builds queue arguments inside
  ``RabbitmqBroker._build_queue_arguments`` (classic queues, no limit); the subclass
  below extends exactly that hook (and the ``.XQ`` declaration) to declare replicated
  quorum queues whose messages are dead-lettered after ``delivery_limit`` returns —
  a task that kills its worker every time stops instead of looping forever.
  Dead-lettering is ``at-least-once`` so a dead letter is never dropped in transit.
* **Publisher confirms** (``confirm_delivery``): ``publish`` returns once RabbitMQ has
  the message on disk in the quorum; unroutable messages raise. A queue that refuses the
  message (a negative confirm: its Raft member is not running yet or is restarting), or
  a node whose memory or disk alarm blocks publishing, is tried again with backoff for
  about ``unavailable_wait_s`` before the publish fails (pika alone waits an alarm out
  forever, holding the request's thread).
* **One declaration at a time per process.** RabbitMQ answers a second, concurrent
  declaration of a new quorum queue as soon as the queue's record exists, before its
  Raft member runs; a publish on that answer is refused. Dramatiq's consumer threads and
  publishers all declare on first use, so the declarations are serialised (the first
  returns once the queue runs; the others then find nothing pending).
* **Acknowledged after completion**: Dramatiq acks when the actor returns; a killed
  worker's unacked message goes back to the queue and is delivered again. A message
  whose connection was lost while it ran is settled by nobody (RabbitMQ put it back):
  its tag would name another delivery on the new connection. The ack frame
  is handed to the consumer's connection to go out with its next poll (at once when it
  idles; behind the deliveries it is handing out when busy) rather than after a socket
  poll of its own per ack, which was ~9 % of a worker's CPU (``docs/benchmarks.md``).
* **Retries** with exponential backoff (Dramatiq's ``Retries``); once exhausted the
  message is rejected into ``.XQ``.
* **Dead letters** are read back from ``.XQ`` by every worker and handed to
  ``on_dead_letter(message, reason)`` (which fails the job with the reason), then acked
  (:mod:`.rabbitmq_dead_letters`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import dramatiq
import pika
import pika.exceptions
from dramatiq.brokers import rabbitmq as dramatiq_rabbitmq
from dramatiq.brokers.rabbitmq import RabbitmqBroker as _DramatiqRabbitmq
from dramatiq.brokers.rabbitmq import _RabbitmqConsumer
from dramatiq.common import xq_name
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import CurrentMessage, Retries

from pixelmill.backends.broker.base import (
    HIGH_PRIORITY,
    QUEUES,
    DeadLetterHandler,
    Delivery,
    Handler,
    RetryPolicy,
    TaskMessage,
)
from pixelmill.backends.broker.rabbitmq_consumer import _Consumer
from pixelmill.backends.broker.rabbitmq_dead_letters import (
    AMQP_ERRORS,
    DeadLetterReaper,
    xq_arguments,
)
from pixelmill.errors import BackendUnavailable

log = logging.getLogger(__name__)


class QuorumRabbitmqBroker(_DramatiqRabbitmq):
    """Dramatiq's RabbitMQ broker declaring quorum queues with a delivery limit."""

    def __init__(self, *, delivery_limit: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delivery_limit = delivery_limit
        self._declare_lock = threading.Lock()

    def _ensure_queue(self, canonical_queue_name: str) -> None:
        with self._declare_lock:  # see the module doc: one declaration at a time
            super()._ensure_queue(canonical_queue_name)

    @property
    def consumer_class(self) -> type[_RabbitmqConsumer]:
        return _Consumer

    def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        arguments: dict[str, Any] = super()._build_queue_arguments(queue_name)
        arguments.pop("x-max-priority", None)  # quorum queues have no priorities: lanes do that
        arguments.update(
            {
                "x-queue-type": "quorum",
                "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        )
        return arguments

    def _declare_xq_queue(self, queue_name: str) -> Any:
        return self.channel.queue_declare(
            queue=xq_name(queue_name), durable=True, arguments=xq_arguments()
        )


def _refused(exc: BaseException) -> str | None:
    """Why Dramatiq gave up, when RabbitMQ is up but would not take the message now:
    negative confirms (the queue refused it) or a resource alarm that kept blocking the
    publishing connection. ``None`` for a failed connection or anything else."""
    cause = getattr(exc, "message", None) if isinstance(exc, ConnectionClosed) else None
    if isinstance(cause, pika.exceptions.NackError):
        return "refused the message (negative confirms: is its quorum member running?)"
    if isinstance(cause, pika.exceptions.ConnectionBlockedTimeout):
        return "blocked publishing (a memory or disk alarm on the node)"
    return None


class RabbitmqBroker:
    """The :class:`~pixelmill.backends.broker.base.Broker` on RabbitMQ (see module doc)."""

    durable = True

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "pixelmill",
        policy: RetryPolicy | None = None,
        confirm: bool = True,
        unavailable_wait_s: float = 5.0,
    ) -> None:
        self.url = url
        self.unavailable_wait_s = unavailable_wait_s
        self.namespace = namespace
        self.policy = policy or RetryPolicy()
        self._dramatiq = QuorumRabbitmqBroker(
            url=url,
            confirm_delivery=confirm,
            delivery_limit=self.policy.delivery_limit,
            middleware=[
                Retries(
                    max_retries=self.policy.max_retries,
                    min_backoff=self.policy.backoff_ms()[0],
                    max_backoff=self.policy.backoff_ms()[1],
                ),
                CurrentMessage(),
            ],
        )
        # a resource alarm (memory, disk) blocks every publishing connection until it
        # clears, and pika waits that out forever unless told: each of Dramatiq's
        # attempts gets its share of the wait, so a publish ends in about
        # unavailable_wait_s and a request thread is not held for the alarm's length
        # (each attempt RabbitMQ read before blocking is delivered once the alarm
        # clears: copies, which the job runner drops as duplicates)
        blocked_s = max(0.5, unavailable_wait_s / dramatiq_rabbitmq.MAX_ENQUEUE_ATTEMPTS)
        parameters = self._dramatiq.parameters
        for each in parameters if isinstance(parameters, list) else [parameters]:
            each.blocked_connection_timeout = blocked_s
        self._consumers: list[_RabbitConsumer] = []

    def queue_name(self, queue: str, *, high: bool = False) -> str:
        if queue not in QUEUES:
            raise ValueError(f"unknown queue {queue!r}; one of {', '.join(QUEUES)}")
        return f"{self.namespace}.{queue}" + (".high" if high else "")

    # -- the Broker protocol ------------------------------------------------------------
    def publish(
        self,
        queue: str,
        message: TaskMessage,
        *,
        priority: int = 0,
        max_retries: int | None = None,
    ) -> None:
        name = self.queue_name(queue, high=priority >= HIGH_PRIORITY)
        options: dict[str, Any] = {}
        if max_retries is not None:
            options["max_retries"] = max_retries
        if message.trace:
            options["trace"] = message.trace  # in the envelope: it survives retries too
        msg: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=name,
            actor_name=name,
            args=(message.job_id, message.idx),
            kwargs={},
            options=options,
        )
        deadline = time.monotonic() + self.unavailable_wait_s
        pause = 0.05
        while True:
            try:
                self._dramatiq.enqueue(msg)
                return
            except Exception as exc:
                # the contract: accepted, or BackendUnavailable. pika also raises ValueError
                # ("Expected connected socket") and connector errors outside AMQPError while
                # a connection is torn down; none of them may escape as a 500 or stop a
                # sweep. A queue that is starting, or an alarm, is waited out for a while.
                why = _refused(exc)
                if why is None:
                    raise BackendUnavailable(
                        f"RabbitMQ did not accept the message: {exc!r}"
                    ) from exc
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BackendUnavailable(
                        f"RabbitMQ {why} for {self.unavailable_wait_s:g} s, queue {name}"
                    ) from exc
                log.info("RabbitMQ %s, queue %s; trying again", why, name)
            time.sleep(min(pause, left))  # the last try at the deadline itself
            pause = min(pause * 2, 0.5)

    def serve(
        self,
        queues: Sequence[str],
        handler: Handler,
        *,
        on_dead_letter: DeadLetterHandler,
        threads: int = 4,
    ) -> _RabbitConsumer:
        names: list[str] = []
        for queue in queues:
            for high in (False, True):
                name = self.queue_name(queue, high=high)
                names.append(name)
                if name not in self._dramatiq.actors:
                    dramatiq.Actor(
                        _actor_fn(queue, handler, self.policy.max_retries),
                        broker=self._dramatiq,
                        actor_name=name,
                        queue_name=name,
                        priority=0 if high else 10,
                        options={},
                    )
        # idle threads wake every 250 ms (Dramatiq's default is 1 s): it bounds how late a
        # retry leaves the delay queue and how long a graceful stop takes
        worker = dramatiq.Worker(
            self._dramatiq, queues=set(names), worker_threads=threads, worker_timeout=250
        )
        worker.start()
        reaper = DeadLetterReaper(
            self._dramatiq.parameters, [xq_name(n) for n in names], on_dead_letter
        )
        reaper.start()
        consumer = _RabbitConsumer(worker, reaper)
        self._consumers.append(consumer)
        return consumer

    def depth(self, queue: str) -> int:
        total = 0
        try:
            connection = pika.BlockingConnection(self._dramatiq.parameters)
        except AMQP_ERRORS as exc:
            raise BackendUnavailable(f"RabbitMQ unreachable: {exc!r}") from exc
        try:
            for high in (False, True):
                channel = connection.channel()
                try:
                    name = self.queue_name(queue, high=high)
                    total += channel.queue_declare(queue=name, passive=True).method.message_count
                except pika.exceptions.ChannelClosedByBroker:
                    continue  # not declared yet: empty
        finally:
            connection.close()
        return total

    def queue_stats(self) -> list[tuple[str, str, int, int]]:
        # a passive declare answers ready messages and consumers (not unacked ones: that
        # takes the management API, see docs/operations.md)
        found: list[tuple[str, str, int, int]] = []
        try:
            connection = pika.BlockingConnection(self._dramatiq.parameters)
        except AMQP_ERRORS as exc:
            raise BackendUnavailable(f"RabbitMQ unreachable: {exc!r}") from exc
        try:
            channel = connection.channel()
            for queue in QUEUES:
                for lane in ("normal", "high"):
                    name = self.queue_name(queue, high=lane == "high")
                    try:
                        ok = channel.queue_declare(queue=name, passive=True).method
                    except pika.exceptions.ChannelClosedByBroker:
                        channel = connection.channel()  # not declared yet: nobody there
                        continue
                    found.append((queue, lane, ok.message_count, ok.consumer_count))
        finally:
            connection.close()
        return found

    def ping(self) -> None:
        try:
            pika.BlockingConnection(self._dramatiq.parameters).close()
        except AMQP_ERRORS as exc:
            raise BackendUnavailable(f"RabbitMQ unreachable: {exc!r}") from exc

    def close(self) -> None:
        for consumer in list(self._consumers):
            consumer.stop(timeout_s=5.0)
        self._dramatiq.close()

    def purge(self) -> None:
        """Delete this namespace's queues (tests and benchmarks clean up with it)."""
        connection = pika.BlockingConnection(self._dramatiq.parameters)
        try:
            for queue in QUEUES:
                for high in (False, True):
                    base = self.queue_name(queue, high=high)
                    for name in (base, base + ".DQ", base + ".XQ"):
                        connection.channel().queue_delete(queue=name)
        finally:
            connection.close()


def _actor_fn(queue: str, handler: Handler, max_retries: int) -> Any:
    def run(job_id: str, idx: int) -> None:
        current: Any = CurrentMessage.get_current_message()
        options = current.options if current is not None else {}
        retries = int(options.get("retries", 0))
        redelivered = bool(getattr(current, "redelivered", False))
        message = TaskMessage(job_id, int(idx), trace=options.get("trace"))
        # the limit Dramatiq's Retries middleware applies: the message's, else the policy's
        limit = int(options.get("max_retries", max_retries))
        handler(Delivery(message, queue, retries, redelivered, limit))

    run.__name__ = f"pixelmill_task_{queue}"
    return run


class _RabbitConsumer:
    def __init__(self, worker: dramatiq.Worker, reaper: DeadLetterReaper) -> None:
        self.worker = worker
        self.reaper = reaper
        self._stopped = False

    def alive(self) -> bool:
        threads = self.worker.workers
        return not self._stopped and bool(threads) and all(t.is_alive() for t in threads)

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        # Dramatiq stops its worker threads after their current message, then closes
        # the consumers: prefetched, unstarted messages go back to RabbitMQ.
        self.worker.stop(timeout=int(timeout_s * 1000))
        self.reaper.stop()


def wait_until_reachable(url: str, timeout_s: float = 60.0) -> None:
    """Block until RabbitMQ at ``url`` accepts connections (start-up of a worker)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            pika.BlockingConnection(pika.URLParameters(url)).close()
            return
        except AMQP_ERRORS as exc:
            if time.monotonic() > deadline:
                raise BackendUnavailable(f"RabbitMQ unreachable at {url}: {exc!r}") from exc
            time.sleep(1.0)
