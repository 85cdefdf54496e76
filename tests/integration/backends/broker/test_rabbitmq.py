"""RabbitMQ-only behaviour of the broker: a quorum queue that refuses messages while its
Raft member is not running (as a newly declared queue does for a moment, which once
failed CI with "0 message(s) NACKed") is waited out, and one that stays down fails the
publish with a clear error in bounded time; so is a memory alarm, which blocks every
publishing connection (pika alone waits that out forever).

(A channel that has already sent to a queue whose member then stops is not refused:
RabbitMQ 3.10 holds its publish until the member runs again, and the confirm comes then.)

The queue's member is stopped and restarted for real, inside the node, with
``rabbitmqctl eval`` (Ra's ``stop_server`` / ``restart_server``); the alarm is raised
for real by setting the node's memory high watermark to one byte, and put back."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pixelmill.backends.broker.base import Delivery, RetryPolicy, TaskMessage
from pixelmill.backends.broker.rabbitmq import RabbitmqBroker
from pixelmill.errors import BackendUnavailable
from tests.helpers import unavailable
from tests.jobs_helpers import wait_for

pytestmark = [pytest.mark.server]

POLICY = RetryPolicy(max_retries=0, min_backoff_s=0.05, max_backoff_s=0.1, delivery_limit=2)


def _queue_member(queue: str, action: str) -> None:
    """``action`` (stop_server / restart_server) the queue's Raft member on the node."""
    expr = (
        f'{{ok,Q}}=rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>,queue,<<"{queue}">>)),'
        f"{{Name,_}}=amqqueue:get_pid(Q),ra:{action}(quorum_queues,{{Name,node()}})."
    )
    assert _eval(expr) == "ok"
    if action == "restart_server":
        # let the member become leader and start its dead-letter worker before anything
        # deletes the queue: RabbitMQ 3.10 loses the node's dead-letter supervisor when an
        # at-least-once queue is deleted while that worker starts (docs/operations.md)
        time.sleep(1.0)


def _eval(expr: str) -> str:
    done = subprocess.run(["rabbitmqctl", "eval", expr], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done
    return done.stdout.strip()


@contextmanager
def memory_alarm() -> Iterator[None]:
    """The node in a memory alarm (watermark: one byte) until the block ends, when its
    own watermark is put back and the alarm has cleared."""
    previous = _eval("vm_memory_monitor:get_vm_memory_high_watermark().")
    _eval("vm_memory_monitor:set_vm_memory_high_watermark({absolute, 1}).")
    try:
        assert wait_for(lambda: "memory" in _eval("rabbit_alarm:get_alarms()."), timeout=10)
        yield
    finally:
        _eval(f"vm_memory_monitor:set_vm_memory_high_watermark({previous}).")
        assert wait_for(lambda: _eval("rabbit_alarm:get_alarms().") == "[]", timeout=30)


@pytest.fixture
def broker(amqp_url: str) -> Iterator[RabbitmqBroker]:
    if shutil.which("rabbitmqctl") is None:
        unavailable("rabbitmqctl is not installed")
    b = RabbitmqBroker(amqp_url, namespace=f"pmtest-{uuid.uuid4().hex[:8]}", policy=POLICY)
    try:
        yield b
    finally:
        b.close()
        b.purge()


def test_a_publish_waits_out_a_queue_whose_member_is_restarting(
    broker: RabbitmqBroker,
) -> None:
    # given a queue that exists (the first publish declared it) but whose member is down
    broker.publish("transform", TaskMessage("job-a", 0))
    queue = broker.queue_name("transform")
    _queue_member(queue, "stop_server")
    try:
        # when a second message is published while the member is down, by a publisher that
        # has not sent to the queue yet (its own thread, so its own connection) — as a
        # process does that starts while a new queue's member is starting
        outcome: list[BaseException | None] = []
        publisher = threading.Thread(
            target=lambda: outcome.append(_publish(broker, TaskMessage("job-a", 1)))
        )
        publisher.start()
        time.sleep(1.5)
        # then the publish is still waiting, not failed, not falsely confirmed
        assert publisher.is_alive() and outcome == []
    finally:
        _queue_member(queue, "restart_server")
    # and once the member runs again it returns, and both messages are delivered once each
    publisher.join(15)
    assert outcome == [None]
    got: list[Delivery] = []
    consumer = broker.serve(["transform"], got.append, on_dead_letter=lambda m, r: None, threads=1)
    try:
        assert wait_for(lambda: len(got) == 2, timeout=15)
        time.sleep(0.3)
    finally:
        consumer.stop(5)
    assert sorted(d.message.idx for d in got) == [0, 1]


def test_a_queue_that_stays_down_fails_the_publish_with_a_clear_error(
    amqp_url: str, broker: RabbitmqBroker
) -> None:
    # given a queue whose member is down, and a new publisher that waits at most 1 s
    broker.publish("transform", TaskMessage("job-b", 0))
    queue = broker.queue_name("transform")
    _queue_member(queue, "stop_server")
    impatient = RabbitmqBroker(
        amqp_url, namespace=broker.namespace, policy=POLICY, unavailable_wait_s=1.0
    )
    try:
        # when it publishes, then it fails within its wait with the broker's reason
        start = time.monotonic()
        with pytest.raises(BackendUnavailable, match=r"refused the message .* for 1 s"):
            impatient.publish("transform", TaskMessage("job-b", 1))
        waited = time.monotonic() - start
        assert 0.9 < waited < 10
    finally:
        _queue_member(queue, "restart_server")
        impatient.close()
    # and the queue takes messages again once its member runs
    broker.publish("transform", TaskMessage("job-b", 2))
    assert broker.depth("transform") == 2


def _publish(broker: RabbitmqBroker, message: TaskMessage) -> BaseException | None:
    try:
        broker.publish("transform", message)
    except BaseException as exc:  # reported to the test's thread
        return exc
    return None


@pytest.mark.exclusive
def test_a_publish_during_a_memory_alarm_fails_in_bounded_time_with_the_reason(
    amqp_url: str, broker: RabbitmqBroker
) -> None:
    # given a declared queue and a publisher that waits at most 2 s
    broker.publish("transform", TaskMessage("job-c", 0))
    patient_for_2s = RabbitmqBroker(
        amqp_url, namespace=broker.namespace, policy=POLICY, unavailable_wait_s=2.0
    )
    try:
        with memory_alarm():
            # when it publishes while the node's memory alarm blocks publishers
            outcome: list[BaseException | None] = []
            start = time.monotonic()
            publisher = threading.Thread(
                target=lambda: outcome.append(_publish(patient_for_2s, TaskMessage("job-c", 1)))
            )
            publisher.start()
            publisher.join(20)  # (without a bound it would wait for the alarm to clear)
            waited = time.monotonic() - start
            # then it ends with the reason (not a thread held for the alarm's length)
            assert not publisher.is_alive()
            assert isinstance(outcome[0], BackendUnavailable)
            assert "memory or disk alarm" in str(outcome[0])
            assert 1.5 < waited < 15
        # and once the alarm clears, publishing works again
        patient_for_2s.publish("transform", TaskMessage("job-c", 2))
    finally:
        patient_for_2s.close()
    assert broker.depth("transform") >= 2


@pytest.mark.exclusive
def test_a_publish_outlasts_an_alarm_that_clears_within_its_wait(
    broker: RabbitmqBroker,
) -> None:
    # given a declared queue, and the node in a memory alarm
    broker.publish("transform", TaskMessage("job-d", 0))
    outcome: list[BaseException | None] = []
    with memory_alarm():
        # when a publish starts during the alarm (its own thread and connection)
        publisher = threading.Thread(
            target=lambda: outcome.append(_publish(broker, TaskMessage("job-d", 1)))
        )
        publisher.start()
        time.sleep(1.5)
        # then it waits, neither failed nor confirmed
        assert publisher.is_alive() and outcome == []
    # and it is confirmed once the alarm clears, and both messages are delivered
    publisher.join(15)
    assert outcome == [None]
    got: list[Delivery] = []
    consumer = broker.serve(["transform"], got.append, on_dead_letter=lambda m, r: None, threads=1)
    try:
        assert wait_for(lambda: {d.message.idx for d in got} == {0, 1}, timeout=15)
        time.sleep(0.5)
    finally:
        consumer.stop(5)
    # (each attempt that RabbitMQ read before it blocked the connection is delivered once
    # the alarm clears: copies of message 1 are possible, which the job runner drops as
    # duplicates; message 0, published before the alarm, comes once)
    assert [d.message.idx for d in got].count(0) == 1
