"""The bare Dramatiq + RabbitMQ floor beside experiment d's job rows (issue 17, item 3).

The same work as pixelmill's rows — the ``nuclei-fluorescence`` preset
(:func:`pixelmill.imaging.pipeline.run`) on the same 256x256 PNG — run by Dramatiq
workers of the same shape (W processes x 2 threads, libvips' default threads), on a
quorum queue declared as pixelmill declares its queues (delivery limit, at-least-once
dead-lettering, ``reject-publish``), with publisher confirms and the ack after the actor
returned, fed at the same 300 messages/s. None of the platform: no HTTP submit, no job
rows or events, no stored inputs or results. pixelmill's jobs/s over the floor's at each
worker count is what the platform costs on a real job.

Everything on 127.0.0.1; the worker processes are the benchmark's own forks, stopped by
PID; the queue and its dead-letter queues are deleted at the end.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
import uuid
from typing import Any

from benchmarks._harness.procs import cpu_seconds
from benchmarks.study import benchmarks_on_path

PRESET = "nuclei-fluorescence"
RATE = 300.0


def _serve(queue: str, threads: int, png: bytes, done: Any, last: Any, ready: Any) -> None:
    """A worker process: Dramatiq's ``Worker`` on ``queue`` until SIGTERM."""
    import dramatiq
    from benchmarks._harness.services import AMQP

    from pixelmill.imaging import ops, pipeline

    benchmarks_on_path()
    from jobs_dramatiq_floor_parts import make_broker

    broker = make_broker(AMQP)
    dramatiq.set_broker(broker)

    @dramatiq.actor(queue_name=queue, actor_name="segment", max_retries=0, broker=broker)
    def segment(n: int) -> None:
        steps = ops.parse_pipeline([{"op": "preset", "name": PRESET}])
        pipeline.run(png, steps)
        with done.get_lock():
            done.value += 1
            last.value = time.time()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    ready.release()
    stop.wait()
    worker.stop(timeout=10_000)
    broker.close()


def drain(workers: int, threads: int, jobs: int, png: bytes) -> dict[str, Any]:
    """``jobs`` messages published at 300/s to ``workers`` fresh worker processes: jobs/s
    from the first publish to the last finish, the workers' CPU ms per job."""
    import dramatiq
    from benchmarks._harness.services import AMQP

    benchmarks_on_path()
    from jobs_dramatiq_floor_parts import make_broker

    # spawned, not forked: a fork of a process whose libvips has started its threads
    # hangs in the child's first libvips call
    ctx = mp.get_context("spawn")
    queue = f"pm_study_floor_{uuid.uuid4().hex[:8]}"
    done, last, ready = ctx.Value("i", 0), ctx.Value("d", 0.0), ctx.Semaphore(0)
    procs = [
        ctx.Process(target=_serve, args=(queue, threads, png, done, last, ready), daemon=True)
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    broker = make_broker(AMQP)
    try:
        for _ in procs:
            if not ready.acquire(timeout=120):
                raise RuntimeError("a floor worker did not start")
        send = dramatiq.actor(queue_name=queue, actor_name="segment", broker=broker)(lambda n: None)
        _publish(send, 6)  # warm: imports, first libvips calls, connections
        _wait(done, 6)
        pids = [p.pid for p in procs if p.pid]
        before = {p: cpu_seconds(p) for p in pids}
        with done.get_lock():
            done.value = 0
        first = time.time()
        _publish(send, jobs)
        _wait(done, jobs)
        cpu = sum(cpu_seconds(p) - before[p] for p in pids)
        span = last.value - first
    finally:
        for p in procs:
            if p.pid:
                os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        broker.close()
        _delete(queue)
    return {"jobs_per_s": jobs / span, "succeeded": jobs, "cpu_ms_per_job": cpu * 1000 / jobs}


def _publish(send: Any, count: int) -> None:
    t0 = time.perf_counter()
    for n in range(count):
        time.sleep(max(0.0, t0 + n / RATE - time.perf_counter()))
        send.send(n)


def _wait(done: Any, target: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while done.value < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the floor finished {done.value} of {target} jobs")
        time.sleep(0.05)


def _delete(queue: str) -> None:
    """The queue and its dead-letter queues, on a connection of its own."""
    import pika
    from benchmarks._harness.services import AMQP
    from dramatiq.common import dq_name, xq_name

    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    try:
        channel = connection.channel()
        for name in (queue, dq_name(queue), xq_name(queue)):
            channel.queue_delete(name)
    finally:
        connection.close()
