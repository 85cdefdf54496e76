"""The RabbitMQ broker's consumer: Dramatiq's, with cheaper acks that only ever settle
the consumer's own deliveries (see :class:`_Consumer`)."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import pika.exceptions
from dramatiq.brokers.rabbitmq import _RabbitmqConsumer
from dramatiq.errors import ConnectionClosed

log = logging.getLogger("pixelmill.backends.broker.rabbitmq")


class _Consumer(_RabbitmqConsumer):
    """Dramatiq's consumer, acknowledging without a socket poll per ack, and only the
    deliveries it received itself.

    After a lost connection Dramatiq's consumer thread opens a new consumer, and the
    task threads settle the messages they were running on *that* one. Delivery tags
    count from 1 per channel, so the old delivery's tag names another message there:
    acking it would settle a message that has not run (lost if the worker then dies),
    and a nack would dead-letter it. A delivery of a lost channel is settled by nobody:
    RabbitMQ has put it back already."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._delivered: dict[int, Any] = {}  # tag -> the message received with it

    def __next__(self) -> Any:
        message: Any = super().__next__()
        if message is not None:
            self._delivered[message._tag] = message
        return message

    def _received(self, message: Any) -> bool:
        """True (once) for a message this consumer received; forgets it."""
        tag = message._tag
        if self._delivered.get(tag) is not message:
            log.warning(
                "not settling message %s: its connection was lost, RabbitMQ redelivers it",
                message.message_id,
            )
            return False
        del self._delivered[tag]
        return True

    def nack(self, message: Any) -> None:
        if self._received(message):
            super().nack(message)

    def ack(self, message: Any) -> None:
        if not self._received(message):
            return
        try:
            self.known_tags.remove(message._tag)
            self.connection.add_callback_threadsafe(partial(self._ack, message._tag))
        except KeyError:
            log.warning("failed to ack message %s: not in known tags", message.message_id)
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as exc:
            raise ConnectionClosed(exc) from None

    def _ack(self, tag: int) -> None:
        # on the consumer's thread: BlockingChannel.basic_ack would also poll the socket
        # until the frame is out; buffered, it leaves with the consumer's next poll (a
        # worker that dies before then gets the message redelivered, as without an ack)
        self.channel._impl.basic_ack(delivery_tag=tag)
