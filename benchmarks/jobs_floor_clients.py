"""The bare clients of ``benchmarks/jobs_floor.py``: psycopg 3 and pika, no pixelmill code,
with the guarantees pixelmill gives (a committed row before the 202, a persistent message
on a quorum queue with publisher confirms, the ack only after the finish commits)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from _harness import cpu_seconds
from _harness.services import AMQP, PG_ADMIN

PG_URL = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
TAG = uuid.uuid4().hex[:8]
TABLE = f"pm_floor_{TAG}"
QUEUE = f"pm-floor-{TAG}"
DELIVERY_LIMIT = 5

INSERT = f"INSERT INTO {TABLE} (id, state, payload) VALUES (%s, 'queued', %s)"
START = (
    f"UPDATE {TABLE} SET state = 'running', started_at = now(), attempts = attempts + 1 "
    "WHERE id = %s AND state IN ('queued', 'running')"
)
FINISH = (
    f"UPDATE {TABLE} SET state = 'succeeded', finished_at = now() "
    "WHERE id = %s AND state = 'running'"
)
PAYLOAD = json.dumps({"inputs": ["0" * 32], "pipeline": [{"op": "flip"}]})


def job_ids(prefix: str) -> Callable[[], str]:
    """Time-ordered text ids, like pixelmill's."""
    count = 0

    def next_id() -> str:
        nonlocal count
        count += 1
        return f"{time.time_ns():016x}{prefix}{count:08x}"

    return next_id


def queue_arguments() -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": f"{QUEUE}.XQ",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def pg_connect(application_name: str = QUEUE) -> Any:
    import psycopg

    return psycopg.connect(PG_URL, autocommit=True, application_name=application_name)


def cpu_of_self_and_backend(db: Any) -> tuple[float, float]:
    """This process's CPU seconds and those of its PostgreSQL backend, read just before
    the connection closes (the backend's /proc entry goes with it)."""
    return time.process_time(), cpu_seconds(db.info.backend_pid)


def properties() -> Any:
    import pika

    return pika.BasicProperties(delivery_mode=2, content_type="application/json")


def submit_sync(cpu: Any, stop_at: float, interval_s: float, limit: int) -> None:
    """One job at a time: INSERT (committed), publish, wait for the confirm."""
    import pika

    db = pg_connect()
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = connection.channel()
    channel.confirm_delivery()
    props = properties()
    new_id = job_ids(f"{os.getpid():06x}")
    sent = 0
    while time.time() < stop_at and sent < limit:
        job = new_id()
        db.execute(INSERT, (job, PAYLOAD), prepare=True)
        channel.basic_publish("", QUEUE, job.encode(), props, mandatory=True)
        sent += 1
        if interval_s:
            time.sleep(interval_s)
    connection.close()
    cpu[0], cpu[1] = cpu_of_self_and_backend(db)
    db.close()


def submit_pipelined(cpu: Any, stop_at: float, window: int) -> None:
    """INSERT (committed) then publish, with up to ``window`` publishes awaiting their
    confirms; a job counts as accepted when its confirm arrives."""
    import pika
    from pika.adapters.select_connection import SelectConnection

    db = pg_connect()
    props = properties()
    new_id = job_ids(f"{os.getpid():06x}")
    state: dict[str, Any] = {"tag": 0, "outstanding": set(), "nacked": 0, "channel": None}

    def pump() -> None:
        channel = state["channel"]
        outstanding: set[int] = state["outstanding"]
        if time.time() >= stop_at:
            if not outstanding:
                connection.close()
            return
        while len(outstanding) < window:
            job = new_id()
            db.execute(INSERT, (job, PAYLOAD), prepare=True)
            channel.basic_publish("", QUEUE, job.encode(), props, mandatory=True)
            state["tag"] += 1
            outstanding.add(state["tag"])

    def on_confirm(frame: Any) -> None:
        method = frame.method
        outstanding: set[int] = state["outstanding"]
        if method.multiple:
            outstanding.difference_update([t for t in outstanding if t <= method.delivery_tag])
        else:
            outstanding.discard(method.delivery_tag)
        if method.NAME.endswith("Nack"):
            state["nacked"] += 1
        if len(outstanding) <= window // 2 or time.time() >= stop_at:
            pump()

    def on_channel(channel: Any) -> None:
        state["channel"] = channel
        channel.confirm_delivery(on_confirm, callback=lambda _frame: pump())

    def on_open(conn: Any) -> None:
        conn.channel(on_open_callback=on_channel)

    connection = SelectConnection(
        pika.URLParameters(AMQP),
        on_open_callback=on_open,
        on_close_callback=lambda conn, reason: conn.ioloop.stop(),
    )
    connection.ioloop.start()
    cpu[0], cpu[1] = cpu_of_self_and_backend(db)
    db.close()
    if state["nacked"]:
        raise SystemExit(f"{state['nacked']} publishes were nacked")


def consume(stop: Any, ready: Any, backend: Any, prefetch: int) -> None:
    """Per message: start UPDATE (committed), finish UPDATE (committed), then ack."""
    import pika

    db = pg_connect()
    backend.value = db.info.backend_pid
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)

    def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
        job = body.decode()
        db.execute(START, (job,), prepare=True)
        db.execute(FINISH, (job,), prepare=True)
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(QUEUE, on_message)
    ready.set()
    while not stop.is_set():
        connection.process_data_events(time_limit=0.25)
    connection.close()
    db.close()
