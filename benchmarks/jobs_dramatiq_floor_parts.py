"""The processes of ``benchmarks/jobs_dramatiq_floor.py``: a bare HTTP submitter (a raw
ASGI app on uvicorn) and bare Dramatiq workers, with no pixelmill code.

Both are started by forking the benchmark (so the counters can live in shared memory).
The guarantees are pixelmill's: a quorum queue with a delivery limit and an
at-least-once dead-letter queue, publisher confirms (the 202 follows the confirm), the
ack only after the actor returned. With ``db`` the submitter also commits the job row
before it publishes and the actor commits a guarded start and finish update (each its
own autocommit statement, prepared) before returning.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from jobs_floor_clients import PG_URL

DELIVERY_LIMIT = 5


def make_broker(amqp: str) -> Any:
    """Dramatiq's RabbitMQ broker (confirms on) declaring pixelmill's quorum queues."""
    from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker
    from dramatiq.common import xq_name
    from dramatiq.middleware import Retries

    class QuorumBroker(RabbitmqBroker):  # type: ignore[misc]
        def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
            arguments: dict[str, Any] = super()._build_queue_arguments(queue_name)
            arguments.pop("x-max-priority", None)
            arguments.update(
                {
                    "x-queue-type": "quorum",
                    "x-delivery-limit": DELIVERY_LIMIT,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                }
            )
            return arguments

        def _declare_xq_queue(self, queue_name: str) -> Any:
            arguments = {"x-queue-type": "quorum", "x-message-ttl": DEAD_MESSAGE_TTL}
            return self.channel.queue_declare(
                queue=xq_name(queue_name), durable=True, arguments=arguments
            )

    return QuorumBroker(url=amqp, confirm_delivery=True, middleware=[Retries()])


def sql(table: str) -> dict[str, str]:
    return {
        "insert": f"INSERT INTO {table} (id, state, payload) VALUES (%s, 'queued', %s)",
        "start": (
            f"UPDATE {table} SET state = 'running', started_at = now(), "
            "attempts = attempts + 1 WHERE id = %s AND state IN ('queued', 'running')"
        ),
        "finish": (
            f"UPDATE {table} SET state = 'succeeded', finished_at = now() "
            "WHERE id = %s AND state = 'running'"
        ),
    }


class _Connections(threading.local):
    """One autocommit psycopg connection per thread (opened on first use)."""

    def __init__(self, app_name: str) -> None:
        self.app_name = app_name
        self.conn: Any = None

    def get(self) -> Any:
        if self.conn is None:
            import psycopg

            self.conn = psycopg.connect(PG_URL, autocommit=True, application_name=self.app_name)
        return self.conn


def serve_http(port: int, amqp: str, queue: str, table: str, counters: Any) -> None:
    """The submitter: ``POST`` any JSON body -> (insert the row) -> confirmed publish ->
    ``202 {"id": ..., "state": "queued"}``. ``counters``: [accepted, first accept]."""
    import anyio.to_thread
    import dramatiq
    import uvicorn

    broker = make_broker(amqp)
    broker.declare_queue(queue)
    statements = sql(table) if table else {}
    connections = _Connections(f"pm-dfloor-{queue}")
    lock = threading.Lock()
    count = 0

    def submit(body: bytes) -> str:
        nonlocal count
        payload = json.loads(body)
        job = f"{time.time_ns():016x}{uuid.uuid4().hex[:16]}"
        message: Any = dramatiq.Message(
            queue_name=queue, actor_name="flip", args=(job,), kwargs={}, options={}
        )
        if statements:
            conn = connections.get()
            conn.execute(statements["insert"], (job, json.dumps(payload)), prepare=True)
        broker.enqueue(message)
        with lock:
            count += 1
            if counters[1] == 0:  # the benchmark resets it when a measurement begins
                counters[1] = time.time()
            counters[0] = count
        return job

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                await send({"type": event["type"] + ".complete"})
                if event["type"] == "lifespan.shutdown":
                    return
        if scope["method"] != "POST":  # the benchmark's readiness probe
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        more = True
        while more:
            event = await receive()
            body += event.get("body", b"")
            more = event.get("more_body", False)
        job = await anyio.to_thread.run_sync(submit, body)
        answer = json.dumps({"id": job, "state": "queued"}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def work(stop: Any, ready: Any, amqp: str, queue: str, table: str, threads: int, done: Any) -> None:
    """A worker process: Dramatiq's ``Worker`` with ``threads`` threads on ``queue``;
    ``done``: [jobs finished, the last finish time]."""
    import dramatiq

    broker = make_broker(amqp)
    statements = sql(table) if table else {}
    connections = _Connections(f"pm-dfloor-{queue}")
    lock = threading.Lock()
    count = 0

    def flip(job: str) -> None:
        nonlocal count
        if statements:
            conn = connections.get()
            conn.execute(statements["start"], (job,), prepare=True)
            conn.execute(statements["finish"], (job,), prepare=True)
        with lock:
            count += 1
            done[0], done[1] = count, time.time()

    dramatiq.Actor(flip, broker=broker, actor_name="flip", queue_name=queue, priority=0, options={})
    worker = dramatiq.Worker(broker, queues={queue}, worker_threads=threads, worker_timeout=250)
    worker.start()
    ready.set()
    stop.wait()
    worker.stop(timeout=10_000)
    broker.close()
