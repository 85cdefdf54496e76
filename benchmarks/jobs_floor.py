"""The floor under async jobs: what the issue's guarantees cost on this machine with bare
clients and none of pixelmill's code (no FastAPI, no Dramatiq, no SQLAlchemy).

One command, under 2 minutes (``--quick``: 2 s per row, 30 latency jobs, under 1)::

    .venv/bin/python benchmarks/jobs_floor.py

Per job, with the guarantees ``benchmarks/jobs.py`` measures pixelmill under:

* a **submitter** commits one job row in PostgreSQL (psycopg 3, autocommit, one
  prepared ``INSERT``: the "202 means committed" step), then publishes one persistent
  message to a **quorum queue** (``x-delivery-limit``, dead-lettering ``at-least-once``
  to a quorum ``.XQ``, as pixelmill declares them) with **publisher confirms**;
  ``sync``: pika ``BlockingConnection``, each publish waits for its confirm (one job at
  a time, one process); ``pipelined``: pika ``SelectConnection``, up to ``--window``
  publishes awaiting their confirms while the next rows are inserted — what a server
  with many concurrent submits can do;
* a **consumer** (1 or 2 processes, pika ``BlockingConnection``, prefetch
  ``--prefetch``) runs per message a guarded "start" ``UPDATE`` and a guarded "finish"
  ``UPDATE``, each committed on its own, and acknowledges the message only after the
  finish is committed.

A last row runs ``--wide`` consumer processes (4) against 2 pipelined submitters: more
work in flight, to tell a rate bound by round-trip latency from one bound by CPU.

Measured: jobs/s end to end (first ``created_at`` to last ``finished_at`` in the DB, as
``jobs.py`` does), CPU ms per job of the submitter, the consumers, RabbitMQ (``beam.smp``)
and PostgreSQL (the backends of its own connections plus the server's processes — WAL
writer, checkpointer, postmaster — so other sessions on this shared machine stay out),
read from ``/proc``; each side alone (the submitter with no consumer
running, then the consumer draining that backlog); submit -> done latency p50/p99 at low
load (one job every 20 ms, ``sync`` submitter, 1 consumer). The 1-minute load average is
printed with every row.

Everything is on 127.0.0.1: a table ``pm_floor_<random>`` in the ``postgres`` database
and queues ``pm-floor-<random>`` (+ ``.XQ``), both dropped at the end; every process it
starts is stopped by PID. The clients are in ``jobs_floor_clients.py``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time
from typing import Any

from _harness import parse, parser, pct, save
from _harness.services import AMQP, CpuMeter
from jobs_floor_clients import (
    QUEUE,
    TABLE,
    consume,
    pg_connect,
    queue_arguments,
    submit_pipelined,
    submit_sync,
)


class Floor:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ctx = mp.get_context("fork")
        self.db = pg_connect("pm-floor-control")  # its polls are not counted
        self.consumers: list[tuple[Any, Any, int]] = []

    def setup(self) -> None:
        import pika

        self.db.execute(
            f"CREATE TABLE {TABLE} (id text PRIMARY KEY, state text NOT NULL, "
            "payload jsonb NOT NULL, attempts int NOT NULL DEFAULT 0, "
            "created_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz, "
            "finished_at timestamptz)"
        )
        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        channel = connection.channel()
        channel.queue_declare(f"{QUEUE}.XQ", durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_declare(QUEUE, durable=True, arguments=queue_arguments())
        connection.close()

    def teardown(self) -> None:
        import pika

        self.stop_consumers()
        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        channel = connection.channel()
        channel.queue_delete(QUEUE)
        channel.queue_delete(f"{QUEUE}.XQ")
        connection.close()
        self.db.execute(f"DROP TABLE IF EXISTS {TABLE}")
        self.db.close()

    def start_consumers(self, count: int) -> dict[str, list[int]]:
        """Start consumer processes; their pids and their PostgreSQL backends' pids."""
        for _ in range(count):
            stop, ready, backend = self.ctx.Event(), self.ctx.Event(), self.ctx.Value("i", 0)
            args = (stop, ready, backend, self.args.prefetch)
            proc = self.ctx.Process(target=consume, args=args)
            proc.start()
            if not ready.wait(30):
                raise SystemExit("consumer did not start")
            self.consumers.append((proc, stop, backend.value))
        return {"consumers": [proc.pid for proc, _, _ in self.consumers]}

    def backends(self) -> list[int]:
        """The consumers' PostgreSQL backends."""
        return [backend for _, _, backend in self.consumers]

    def stop_consumers(self) -> None:
        for _, stop, _ in self.consumers:
            stop.set()
        for proc, _, _ in self.consumers:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        self.consumers = []

    def submitter(self, mode: str, seconds: float, *, interval_s: float = 0, limit: int = 0) -> Any:
        """Start a submitter process; its CPU seconds and its PostgreSQL backend's land
        in ``proc.cpu`` when it ends."""
        stop_at = time.time() + seconds
        cpu = self.ctx.Array("d", 2)
        if mode == "sync":
            args: tuple[Any, ...] = (cpu, stop_at, interval_s, limit or 10**9)
            proc = self.ctx.Process(target=submit_sync, args=args)
        else:
            args = (cpu, stop_at, self.args.window)
            proc = self.ctx.Process(target=submit_pipelined, args=args)
        proc.start()
        proc.cpu = cpu  # type: ignore[attr-defined]
        return proc

    def marker(self) -> str:
        return f"{time.time_ns():016x}"

    def counts(self, since: str) -> tuple[int, int]:
        total, done = self.db.execute(
            f"SELECT count(*), count(*) FILTER (WHERE state = 'succeeded') FROM {TABLE} "
            "WHERE id > %s",
            (since,),
        ).fetchone()
        return int(total), int(done)

    def wait_done(self, since: str, submitter: Any, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            total, done = self.counts(since)
            if submitter.exitcode is not None and total == done:
                return total
            time.sleep(0.1)
        raise SystemExit("jobs did not finish in time")

    def span(self, since: str, start: str = "created_at") -> float:
        first, last = self.db.execute(
            f"SELECT min({start}), max(finished_at) FROM {TABLE} WHERE id > %s", (since,)
        ).fetchone()
        return float((last - first).total_seconds())

    def throughput(self, mode: str, consumers: int, submitters: int = 1) -> dict[str, Any]:
        pids = self.start_consumers(consumers)
        try:
            warm = self.submitter("sync", 2, limit=50)
            self.wait_done("0", warm)
            since = self.marker()
            meter = CpuMeter(pids, self.backends)
            procs = [self.submitter(mode, self.args.seconds) for _ in range(submitters)]
            for proc in procs:
                proc.join()
            jobs = self.wait_done(since, procs[-1])
            cpu = meter.stop(jobs)
            del cpu["total"], cpu["postgres_all"]
            cpu["submitter"] = sum(p.cpu[0] for p in procs) * 1000 / jobs
            cpu["postgres"] += sum(p.cpu[1] for p in procs) * 1000 / jobs
            cpu["total"] = sum(cpu.values())
        finally:
            self.stop_consumers()
        return {
            "row": "throughput",
            "submitter": mode if submitters == 1 else f"{submitters} x {mode}",
            "consumers": consumers,
            "jobs": jobs,
            "jobs_per_s": jobs / self.span(since),
            "cpu_ms_per_job": cpu,
            "load_average": os.getloadavg()[0],
        }

    def alone(self, mode: str, consumers: int) -> dict[str, Any]:
        """The submitter with no consumer running, then the consumers draining it."""
        since = self.marker()
        meter = CpuMeter({})
        began = time.monotonic()
        proc = self.submitter(mode, self.args.seconds)
        proc.join()
        elapsed = time.monotonic() - began
        jobs, _ = self.counts(since)
        submit_cpu = meter.stop(jobs)
        pids = self.start_consumers(consumers)
        try:
            meter = CpuMeter(pids, self.backends)
            self.wait_done(since, proc)
            drain_cpu = meter.stop(jobs)
        finally:
            self.stop_consumers()
        return {
            "row": "alone",
            "submitter": mode,
            "consumers": consumers,
            "jobs": jobs,
            "submits_per_s": jobs / elapsed,
            "submit_cpu_ms_per_job": {
                "submitter": proc.cpu[0] * 1000 / jobs,
                "rabbitmq": submit_cpu["rabbitmq"],
                "postgres": submit_cpu["postgres"] + proc.cpu[1] * 1000 / jobs,
            },
            "drain_jobs_per_s": jobs / self.span(since, "started_at"),
            "drain_cpu_ms_per_job": {
                "consumers": drain_cpu["consumers"],
                "rabbitmq": drain_cpu["rabbitmq"],
                "postgres": drain_cpu["postgres"],
            },
            "load_average": os.getloadavg()[0],
        }

    def latency(self) -> dict[str, Any]:
        self.start_consumers(1)
        try:
            since = self.marker()
            proc = self.submitter("sync", 60, interval_s=0.02, limit=self.args.latency_jobs)
            proc.join()
            self.wait_done(since, proc)
            rows = self.db.execute(
                f"SELECT extract(epoch FROM started_at - created_at) * 1000, "
                f"extract(epoch FROM finished_at - created_at) * 1000 FROM {TABLE} "
                "WHERE id > %s",
                (since,),
            ).fetchall()
        finally:
            self.stop_consumers()
        start = [float(r[0]) for r in rows]
        done = [float(r[1]) for r in rows]
        return {
            "row": "latency",
            "jobs": len(rows),
            "enqueue_to_start_p50_ms": pct(start, 0.5),
            "enqueue_to_start_p99_ms": pct(start, 0.99),
            "submit_to_done_p50_ms": pct(done, 0.5),
            "submit_to_done_p99_ms": pct(done, 0.99),
            "load_average": os.getloadavg()[0],
        }


def options() -> argparse.Namespace:
    p = parser(__doc__, "2 s per row, 30 latency jobs, no wide row")
    p.add_argument("--seconds", type=float, default=8, help="submit time per row")
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--window", type=int, default=64, help="unconfirmed publishes")
    p.add_argument("--prefetch", type=int, default=16, help="per consumer")
    p.add_argument("--latency-jobs", type=int, default=200)
    p.add_argument(
        "--wide",
        type=int,
        default=4,
        help="consumer processes (and 2 pipelined submitters) of the widest row; 0: none",
    )
    args = parse(p, {"seconds": 2, "latency_jobs": 30, "wide": 0})
    return args


def main() -> None:
    args = options()
    floor = Floor(args)
    results: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    floor.setup()
    try:
        for _ in range(args.reps):
            rows = [(floor.throughput, (m, c)) for m in ("sync", "pipelined") for c in (1, 2)]
            if args.wide:  # more in flight: is the rate bound by latency or by CPU?
                rows.append(
                    (lambda *a: floor.throughput(*a, submitters=2), ("pipelined", args.wide))
                )
            rows += [(floor.alone, ("pipelined", 1)), (floor.latency, ())]
            for run, run_args in rows:
                results.append(run(*run_args))
                print(json.dumps(results[-1]), flush=True)
    finally:
        floor.teardown()
    report(results, load_before, args)
    save("jobs_floor", {"results": results}, headline(results))


def headline(results: list[dict[str, Any]]) -> list[str]:
    """The floor's jobs/s per submitter with 1 consumer, and its submit -> done p50."""
    med = statistics.median
    lines = []
    for mode in ("sync", "pipelined"):
        runs = [
            r
            for r in results
            if r["row"] == "throughput" and r["submitter"] == mode and r["consumers"] == 1
        ]
        if runs:
            lines.append(
                f"floor, {mode} submitter, 1 consumer: {med(r['jobs_per_s'] for r in runs):.0f} "
                f"jobs/s at {med(r['cpu_ms_per_job']['total'] for r in runs):.2f} ms CPU per job"
            )
    lat = [r for r in results if r["row"] == "latency"]
    if lat:
        lines.append(
            f"floor at low load: submit->done p50 {med(r['submit_to_done_p50_ms'] for r in lat):.2f}"
            f" ms, enqueue->start p99 {med(r['enqueue_to_start_p99_ms'] for r in lat):.2f} ms"
        )
    return lines


def report(results: list[dict[str, Any]], load_before: float, args: argparse.Namespace) -> None:
    med = statistics.median
    print(
        f"\nload average (1 min) at start {load_before:.1f}, at the end "
        f"{os.getloadavg()[0]:.1f}; {args.reps} rep(s), {args.seconds:g} s per row, "
        f"window {args.window}, prefetch {args.prefetch}\n"
    )
    print(
        "| submitter | consumer processes | jobs/s (runs) | CPU ms/job: submitter, consumers, "
        "RabbitMQ, PostgreSQL = total | load |"
    )
    print("|---|---|---|---|---|")
    rows = [(m, c) for m in ("sync", "pipelined") for c in (1, 2)]
    rows.append(("2 x pipelined", args.wide))
    for mode, consumers in rows:
        runs = [
            r
            for r in results
            if r["row"] == "throughput" and r["submitter"] == mode and r["consumers"] == consumers
        ]
        if not runs:
            continue
        parts = {
            k: med(r["cpu_ms_per_job"][k] for r in runs)
            for k in ("submitter", "consumers", "rabbitmq", "postgres", "total")
        }
        each = ", ".join(f"{r['jobs_per_s']:.0f}" for r in runs)
        loads = ", ".join(f"{r['load_average']:.1f}" for r in runs)
        print(
            f"| {mode} | {consumers} | {med(r['jobs_per_s'] for r in runs):.0f} ({each}) | "
            f"{parts['submitter']:.2f}, {parts['consumers']:.2f}, {parts['rabbitmq']:.2f}, "
            f"{parts['postgres']:.2f} = {parts['total']:.2f} | {loads} |"
        )
    others(results)


def others(results: list[dict[str, Any]]) -> None:
    """Each side alone and the low-load latency."""
    med = statistics.median
    alone = [r for r in results if r["row"] == "alone"]
    if alone:
        sub = {
            k: med(r["submit_cpu_ms_per_job"][k] for r in alone)
            for k in alone[0]["submit_cpu_ms_per_job"]
        }
        drain = {
            k: med(r["drain_cpu_ms_per_job"][k] for r in alone)
            for k in alone[0]["drain_cpu_ms_per_job"]
        }
        print(
            f"\neach side alone (pipelined submitter; then 1 consumer draining): "
            f"{med(r['submits_per_s'] for r in alone):.0f} submits/s at "
            f"{sub['submitter']:.2f} ms submitter + {sub['rabbitmq']:.2f} RabbitMQ + "
            f"{sub['postgres']:.2f} PostgreSQL per job; drain "
            f"{med(r['drain_jobs_per_s'] for r in alone):.0f} jobs/s at "
            f"{drain['consumers']:.2f} ms consumer + {drain['rabbitmq']:.2f} RabbitMQ + "
            f"{drain['postgres']:.2f} PostgreSQL per job"
        )
    lat = [r for r in results if r["row"] == "latency"]
    if lat:
        print(
            "\nlow load (sync submitter, one job every 20 ms, 1 consumer): enqueue->start "
            f"p50 {med(r['enqueue_to_start_p50_ms'] for r in lat):.2f} ms, p99 "
            f"{med(r['enqueue_to_start_p99_ms'] for r in lat):.2f} ms; submit->done p50 "
            f"{med(r['submit_to_done_p50_ms'] for r in lat):.2f} ms, p99 "
            f"{med(r['submit_to_done_p99_ms'] for r in lat):.2f} ms"
        )


if __name__ == "__main__":
    main()
