"""One contract, every broker: the in-process broker and RabbitMQ (Dramatiq, quorum
queues) deliver, retry with backoff, dead-letter with a reason, keep queues and
priority lanes apart, and stop gracefully — the same way."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pixelmill.backends.broker.base import Broker, Delivery, RetryPolicy, TaskMessage
from pixelmill.backends.broker.memory import InProcessBroker
from tests.jobs_helpers import wait_for

POLICY = RetryPolicy(max_retries=2, min_backoff_s=0.05, max_backoff_s=0.2, delivery_limit=2)


@pytest.fixture(params=["memory", "rabbitmq"])
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    if request.param == "memory":
        b: Any = InProcessBroker(POLICY)
        yield b
        b.close()
        return
    url = request.getfixturevalue("amqp_url")
    from pixelmill.backends.broker.rabbitmq import RabbitmqBroker

    b = RabbitmqBroker(url, namespace=f"pmtest-{uuid.uuid4().hex[:8]}", policy=POLICY)
    try:
        yield b
    finally:
        b.close()
        b.purge()


class Recorder:
    """A handler that records deliveries and fails the first ``fail`` runs per message."""

    def __init__(self, fail: int = 0, sleep: float = 0.0) -> None:
        self.fail = fail
        self.sleep = sleep
        self.deliveries: list[Delivery] = []
        self.dead: list[tuple[TaskMessage, str]] = []
        self.lock = threading.Lock()

    def __call__(self, delivery: Delivery) -> None:
        with self.lock:
            self.deliveries.append(delivery)
            runs = sum(d.message == delivery.message for d in self.deliveries)
        if self.sleep:
            time.sleep(self.sleep)
        if runs <= self.fail:
            raise RuntimeError(f"boom {runs}")

    def dead_letter(self, message: TaskMessage, reason: str) -> None:
        with self.lock:
            self.dead.append((message, reason))

    def runs(self, message: TaskMessage) -> int:
        with self.lock:
            return sum(d.message == message for d in self.deliveries)


def test_published_messages_are_handled_exactly_once(broker: Broker) -> None:
    # given a consumer on the transform queue
    rec = Recorder()
    consumer = broker.serve(["transform"], rec, on_dead_letter=rec.dead_letter, threads=2)
    # when three messages are published
    messages = [TaskMessage("job-a", i) for i in range(3)]
    for m in messages:
        broker.publish("transform", m)
    # then each is handled once, and acknowledged (not delivered again)
    wait_for(lambda: len(rec.deliveries) == 3)
    time.sleep(0.5)
    consumer.stop(5)
    assert sorted(d.message.idx for d in rec.deliveries) == [0, 1, 2]
    assert all(d.queue == "transform" and d.retries == 0 for d in rec.deliveries)
    assert rec.dead == []


def test_a_failing_handler_is_retried_with_backoff_until_it_succeeds(broker: Broker) -> None:
    # given a handler that fails twice, then works
    rec = Recorder(fail=2)
    consumer = broker.serve(["analyse"], rec, on_dead_letter=rec.dead_letter, threads=1)
    message = TaskMessage("job-b", 0)
    # when the message is published
    broker.publish("analyse", message)
    # then it runs three times, counting its retries, and is not dead-lettered
    wait_for(lambda: rec.runs(message) == 3)
    time.sleep(0.4)
    consumer.stop(5)
    assert [d.retries for d in rec.deliveries] == [0, 1, 2]
    assert rec.dead == []


def test_a_message_that_always_fails_is_dead_lettered_with_the_reason(broker: Broker) -> None:
    # given a handler that always fails
    rec = Recorder(fail=1000)
    consumer = broker.serve(["segment"], rec, on_dead_letter=rec.dead_letter, threads=1)
    message = TaskMessage("job-c", 7)
    # when it is published
    broker.publish("segment", message)
    # then after 1 + max_retries runs it is dead-lettered once, with why
    wait_for(lambda: rec.dead, timeout=15)
    time.sleep(0.3)
    consumer.stop(5)
    assert rec.runs(message) == POLICY.max_retries + 1
    # and only the last delivery said that a raise would end it (no retry follows)
    assert [d.last_attempt for d in rec.deliveries] == [False, False, True]
    assert len(rec.dead) == 1
    dead, reason = rec.dead[0]
    assert dead == message
    assert "gave up after 3 attempts" in reason


def test_max_retries_can_be_set_per_message(broker: Broker) -> None:
    rec = Recorder(fail=1000)
    consumer = broker.serve(["train"], rec, on_dead_letter=rec.dead_letter, threads=1)
    message = TaskMessage("job-d", 0)
    broker.publish("train", message, max_retries=0)
    wait_for(lambda: rec.dead, timeout=15)
    consumer.stop(5)
    assert rec.runs(message) == 1
    assert rec.deliveries[0].last_attempt  # its only run is its last


def test_queues_are_separate(broker: Broker) -> None:
    # given a consumer of transform only
    rec = Recorder()
    consumer = broker.serve(["transform"], rec, on_dead_letter=rec.dead_letter, threads=1)
    # when one message goes to analyse and one to transform
    broker.publish("analyse", TaskMessage("job-e", 0))
    broker.publish("transform", TaskMessage("job-e", 1))
    # then only the transform one is handled; the analyse one waits in its queue
    wait_for(lambda: len(rec.deliveries) == 1)
    time.sleep(0.3)
    consumer.stop(5)
    assert [d.message.idx for d in rec.deliveries] == [1]
    assert wait_for(lambda: broker.depth("analyse") == 1, timeout=5)


def test_high_priority_messages_overtake_the_backlog(broker: Broker) -> None:
    # given a backlog of normal messages, published before any consumer runs
    for i in range(6):
        broker.publish("transform", TaskMessage("job-f", i))
    broker.publish("transform", TaskMessage("job-f", 99), priority=9)
    wait_for(lambda: broker.depth("transform") == 7, timeout=5)
    # when one slow thread works through them
    rec = Recorder(sleep=0.05)
    consumer = broker.serve(["transform"], rec, on_dead_letter=rec.dead_letter, threads=1)
    wait_for(lambda: len(rec.deliveries) == 7)
    consumer.stop(5)
    # then the high-priority message is handled before most of the backlog
    order = [d.message.idx for d in rec.deliveries]
    assert order.index(99) <= 2, order


def test_stop_lets_the_running_handler_finish_and_acknowledges_it(broker: Broker) -> None:
    # given a slow handler working on a message
    rec = Recorder(sleep=0.6)
    consumer = broker.serve(["transform"], rec, on_dead_letter=rec.dead_letter, threads=1)
    broker.publish("transform", TaskMessage("job-g", 0))
    wait_for(lambda: rec.deliveries)
    # when the consumer is stopped (SIGTERM in a worker)
    consumer.stop(10)
    # then the run completed and the message is not delivered again to a new consumer
    again = Recorder()
    consumer2 = broker.serve(["transform"], again, on_dead_letter=again.dead_letter, threads=1)
    time.sleep(0.6)
    consumer2.stop(5)
    assert len(rec.deliveries) == 1
    assert again.deliveries == []


def test_depth_counts_waiting_messages(broker: Broker) -> None:
    assert broker.depth("segment") == 0
    for i in range(3):
        broker.publish("segment", TaskMessage("job-h", i), priority=i * 4)
    assert wait_for(lambda: broker.depth("segment") == 3, timeout=5)


def test_publishing_to_an_unknown_queue_is_an_error(broker: Broker) -> None:
    with pytest.raises(ValueError, match="unknown queue"):
        broker.publish("nope", TaskMessage("job-i", 0))


def stats(broker: Broker) -> dict[tuple[str, str], tuple[int, int]]:
    return {(q, lane): (ready, consumers) for q, lane, ready, consumers in broker.queue_stats()}


def test_queue_stats_count_ready_messages_per_lane_and_the_consumers(broker: Broker) -> None:
    # given two normal and one high-priority message waiting on `analyse`
    for i, priority in enumerate((0, 0, 9)):
        broker.publish("analyse", TaskMessage("job-j", i), priority=priority)
    # then the stats see them per lane, and nobody consuming
    assert wait_for(lambda: stats(broker).get(("analyse", "normal")) == (2, 0), timeout=5)
    assert stats(broker)[("analyse", "high")] == (1, 0)
    # when a consumer serves the queue with a handler that holds each message
    rec = Recorder(sleep=0.3)
    consumer = broker.serve(["analyse"], rec, on_dead_letter=rec.dead_letter, threads=1)
    try:
        # then it shows up as a consumer of both lanes, and the messages drain
        assert wait_for(lambda: stats(broker)[("analyse", "normal")][1] >= 1, timeout=10)
        assert stats(broker)[("analyse", "high")][1] >= 1
        wait_for(lambda: len(rec.deliveries) == 3, timeout=10)
        assert wait_for(lambda: stats(broker)[("analyse", "normal")][0] == 0, timeout=5)
    finally:
        consumer.stop(5)


def test_a_consumer_is_alive_until_it_stops(broker: Broker) -> None:
    rec = Recorder()
    consumer = broker.serve(["train"], rec, on_dead_letter=rec.dead_letter, threads=2)
    assert wait_for(consumer.alive, timeout=5)
    consumer.stop(5)
    assert not consumer.alive()
