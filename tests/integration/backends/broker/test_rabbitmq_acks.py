"""A task thread settles its message on whatever consumer its consumer thread holds now:
after a lost connection that is a new one, whose channel numbers its deliveries from 1
again. The old delivery's tag must not settle the new delivery that has it, which has
not run: acked, it would be lost if the worker then died (and nacked, dead-lettered)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pixelmill.backends.broker.base import RetryPolicy, TaskMessage
from pixelmill.backends.broker.rabbitmq import RabbitmqBroker
from tests.jobs_helpers import wait_for

pytestmark = [pytest.mark.server]


@pytest.fixture
def broker(amqp_url: str) -> Iterator[RabbitmqBroker]:
    b = RabbitmqBroker(
        amqp_url, namespace=f"pmtest-{uuid.uuid4().hex[:8]}", policy=RetryPolicy(max_retries=0)
    )
    try:
        yield b
    finally:
        b.close()
        b.purge()


def _first(consumer: Any) -> Any:
    for message in consumer:
        if message is not None:
            return message
    raise AssertionError("no delivery")


@pytest.mark.parametrize("settle", ["ack", "nack"])
def test_a_delivery_of_a_lost_connection_does_not_settle_another(
    broker: RabbitmqBroker, settle: str
) -> None:
    # given two tasks, one delivered on the connection a worker lost, the other on the
    # consumer it opened since: both have delivery tag 1, each on its own channel
    for idx in range(2):
        broker.publish("transform", TaskMessage("job", idx))
    name = broker.queue_name("transform")
    lost = broker._dramatiq.consume(name, prefetch=1, timeout=200)
    running = _first(lost)
    current = broker._dramatiq.consume(name, prefetch=1, timeout=200)
    waiting = _first(current)
    assert running._tag == waiting._tag and running.args != waiting.args
    # when the old task finishes and is settled on the current consumer
    getattr(current, settle)(running)
    current.connection.process_data_events(time_limit=0.3)  # the frame would go out
    # then the waiting task was not settled: once both connections are gone (the
    # worker died), RabbitMQ holds both tasks again, to deliver them once more
    lost.close()
    current.close()
    assert wait_for(lambda: broker.depth("transform") == 2, timeout=10), broker.depth("transform")
