"""RabbitMQ dead letters: the ``.XQ`` queues' arguments, the reaper thread that settles
each dead letter through ``on_dead_letter``, and the reason it gives, in words (see
:mod:`pixelmill.backends.broker.rabbitmq`)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
import pika
import pika.exceptions
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL
from dramatiq.errors import BrokerError

from pixelmill.backends.broker.base import DeadLetterHandler, TaskMessage

log = logging.getLogger(__name__)
#: what a lost or unreachable RabbitMQ raises (Dramatiq, pika, the socket)
AMQP_ERRORS = (BrokerError, pika.exceptions.AMQPError, OSError)


def xq_arguments() -> dict[str, Any]:
    return {"x-queue-type": "quorum", "x-message-ttl": DEAD_MESSAGE_TTL}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def dead_letter_reason(headers: dict[str, Any] | None, options: dict[str, Any]) -> str:
    """Why RabbitMQ dead-lettered a message, in words, from its ``x-death`` header."""
    deaths = (headers or {}).get("x-death") or []
    why = _text(deaths[0].get("reason", "")) if deaths else ""
    if why == "delivery_limit":
        count = (headers or {}).get("x-delivery-count")
        times = f" {int(count) + 1 if count is not None else 'several'} times"
        return f"delivered{times} without finishing: the worker died each time (delivery limit)"
    if why == "rejected":
        attempts = int(options.get("retries", 0)) + 1
        trace = str(options.get("traceback") or "").strip().splitlines()
        last = f": {trace[-1]}" if trace else ""
        return f"gave up after {attempts} attempts{last}"
    return f"dead-lettered ({why or 'unknown reason'})"


class DeadLetterReaper(threading.Thread):
    """Reads the ``.XQ`` queues and settles each dead letter through ``on_dead_letter``."""

    def __init__(
        self, parameters: Any, queues: list[str], on_dead_letter: DeadLetterHandler
    ) -> None:
        super().__init__(name="pm-dead-letters", daemon=True)
        self.parameters = parameters
        self.queues = queues
        self.on_dead_letter = on_dead_letter
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5.0)

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self._consume()
            except AMQP_ERRORS as exc:
                log.warning("dead-letter consumer lost RabbitMQ (%r); reconnecting", exc)
                self._halt.wait(1.0)

    def _consume(self) -> None:
        connection = pika.BlockingConnection(self.parameters)
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=8)
            for queue in self.queues:
                channel.queue_declare(queue=queue, durable=True, arguments=xq_arguments())
                channel.basic_consume(queue=queue, on_message_callback=self._on_message)
            while not self._halt.is_set():
                connection.process_data_events(time_limit=0.5)
        finally:
            if connection.is_open:
                connection.close()

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        try:
            message = dramatiq.Message.decode(body)
            job_id, idx = message.args[0], int(message.args[1])
        except Exception:
            log.exception("undecodable dead letter dropped")
            channel.basic_ack(method.delivery_tag)
            return
        reason = dead_letter_reason(properties.headers, message.options)
        try:
            self.on_dead_letter(TaskMessage(job_id, idx), reason)
        except Exception as exc:
            log.warning("settling dead letter %s/%s failed (%s); retrying", job_id, idx, exc)
            channel.connection.sleep(1.0)
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        channel.basic_ack(method.delivery_tag)
