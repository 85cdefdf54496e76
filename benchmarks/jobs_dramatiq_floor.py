"""The floor under pixelmill's jobs path over HTTP: bare Dramatiq + RabbitMQ with the same
guarantees, the same worker shape and the same client, and none of pixelmill's code.

One command (``--quick``: 1 rep of 5 s rows, 100 latency jobs)::

    .venv/bin/python benchmarks/jobs_dramatiq_floor.py [--reps 3] [--seconds 10]

What runs, all on 127.0.0.1 (every process is stopped by PID; queues and table dropped):

* a **submitter**: a raw ASGI app on uvicorn (one process, like ``pixelmill gateway`` in
  ``benchmarks/jobs.py``); per ``POST`` it parses the JSON body, publishes one Dramatiq
  message to a **quorum queue** declared as pixelmill declares its queues
  (``x-delivery-limit``, at-least-once dead-lettering, ``reject-publish``) with
  **publisher confirms**, on a worker thread (``anyio.to_thread``), and answers 202;
* **workers**: ``--workers`` processes of Dramatiq's ``Worker`` with ``--threads``
  threads each (2 x 4, as pixelmill's in the issue); the actor does nothing and
  Dramatiq acks after it returned;
* **client**: wrk, 16 connections, 2 threads, ``--seconds`` (``jobs.py``'s).

Two floors: ``bare`` (no database — "bare Dramatiq + RabbitMQ") and ``db`` (the
submitter also commits the job row before it publishes, the actor commits a guarded
start and a guarded finish ``UPDATE``, each one prepared autocommit statement, before
it returns — the database writes pixelmill's path cannot do without).

Measured: jobs/s (first accept to last finish), CPU ms per job of the submitter, the
workers, RabbitMQ and (``db``) PostgreSQL from ``/proc``, and at low load (``db``, 1
worker process, a job every 20 ms) enqueue -> start p50/p99 from the table. The 1-minute
load average is printed with every row. Raw numbers: ``benchmarks/.work/``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from _harness import free_port, parse, parser, pct, save, wrk
from _harness.services import AMQP, CpuMeter
from jobs_dramatiq_floor_parts import serve_http, work
from jobs_floor_clients import pg_connect

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"inputs": ["0123456789abcdef0123456789abcdef"], "pipeline": [{"op": "flip"}], "output": {"image": false}}'
wrk.headers["Content-Type"] = "application/json"
"""


class Floor:
    """One floor (``bare`` or ``db``): its submitter and workers, started and stopped."""

    def __init__(self, mode: str, args: argparse.Namespace) -> None:
        self.mode, self.args = mode, args
        self.ctx = mp.get_context("fork")
        tag = uuid.uuid4().hex[:8]
        self.queue = f"pm-dfloor-{tag}"
        self.table = f"pm_dfloor_{tag}" if mode == "db" else ""
        self.db = pg_connect("pm-dfloor-control")
        self.accepted = self.ctx.RawArray("d", 2)
        self.workers: list[tuple[Any, Any, Any]] = []
        self.port = free_port()
        self.gateway: Any = None

    def __enter__(self) -> Floor:
        if self.table:
            self.db.execute(
                f"CREATE TABLE {self.table} (id text PRIMARY KEY, state text NOT NULL, "
                "payload jsonb NOT NULL, attempts int NOT NULL DEFAULT 0, "
                "created_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz, "
                "finished_at timestamptz)"
            )
        args = (self.port, AMQP, self.queue, self.table, self.accepted)
        self.gateway = self.ctx.Process(target=serve_http, args=args, daemon=True)
        self.gateway.start()
        import httpx

        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_workers()
        if self.gateway is not None:
            self.gateway.terminate()
            self.gateway.join(10)
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        channel = connection.channel()
        for name in (self.queue, f"{self.queue}.DQ", f"{self.queue}.XQ"):
            channel.queue_delete(name)
        connection.close()
        if self.table:
            self.db.execute(f"DROP TABLE IF EXISTS {self.table}")
        self.db.close()

    def start_workers(self, count: int) -> list[int]:
        for _ in range(count):
            stop, ready, done = self.ctx.Event(), self.ctx.Event(), self.ctx.RawArray("d", 2)
            args = (stop, ready, AMQP, self.queue, self.table, self.args.threads, done)
            proc = self.ctx.Process(target=work, args=args)
            proc.start()
            if not ready.wait(30):
                raise SystemExit("worker did not start")
            self.workers.append((proc, stop, done))
        return [proc.pid for proc, _, _ in self.workers]

    def stop_workers(self) -> None:
        for _, stop, _ in self.workers:
            stop.set()
        for proc, _, _ in self.workers:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        self.workers = []

    def done(self) -> tuple[int, float]:
        """Jobs finished by the running workers, and the last finish time."""
        count = sum(int(done[0]) for _, _, done in self.workers)
        last = max((done[1] for _, _, done in self.workers), default=0.0)
        return count, last

    def wait_drained(self, target: int, timeout: float = 120) -> tuple[int, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            count, last = self.done()
            if count >= target:
                return count, last
            time.sleep(0.05)
        raise SystemExit(f"{self.mode} floor: {self.done()[0]} of {target} jobs done")

    def post(self, count: int, interval_s: float = 0) -> None:
        import httpx

        body = {"inputs": ["0" * 32], "pipeline": [{"op": "flip"}]}
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}") as client:
            for _ in range(count):
                client.post("/", json=body).raise_for_status()
                time.sleep(interval_s)

    def backends(self) -> list[int]:
        rows = self.db.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
            (f"pm-dfloor-{self.queue}",),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def throughput(self) -> dict[str, Any]:
        pids = self.start_workers(self.args.workers)
        try:
            self.post(50)  # warm-up: connections, prepared statements
            self.wait_drained(50)
            done0, _ = self.done()
            accepted0 = int(self.accepted[0])
            self.accepted[1] = 0.0  # the submitter stamps its next accept
            parts = {"gateway": [self.gateway.pid], "workers": pids}
            meter = CpuMeter(parts, self.backends if self.table else list)
            script = Path(f"/tmp/pm-dfloor-{self.queue}.lua")
            script.write_text(WRK_SCRIPT)
            url = f"http://127.0.0.1:{self.port}/"
            out = wrk(url, conc=16, seconds=self.args.seconds, threads=2, script=script)
            script.unlink()
            jobs = int(self.accepted[0]) - accepted0
            _, last = self.wait_drained(done0 + jobs)
            first = self.accepted[1]
            cpu = meter.stop(jobs)
            cpu.pop("postgres_all")
            if not self.table:  # no database in this floor: nothing of PostgreSQL's is ours
                cpu["total"] -= cpu.pop("postgres")
        finally:
            self.stop_workers()
        return {
            "row": "throughput",
            "floor": self.mode,
            "workers": self.args.workers,
            "threads": self.args.threads,
            "jobs": jobs,
            "jobs_per_s": jobs / (last - first),
            "cpu_ms_per_job_by_part": cpu,
            "load_average": os.getloadavg()[0],
            "wrk": out.strip().splitlines()[-2:],
        }

    def latency(self) -> dict[str, Any]:
        """One job every 20 ms, 1 worker process: enqueue -> start from the table."""
        self.start_workers(1)  # the queue is empty: it counts from 0
        try:
            self.post(20)
            self.wait_drained(20)
            since = f"{time.time_ns():016x}"
            self.post(self.args.latency_jobs, interval_s=0.02)
            self.wait_drained(self.args.latency_jobs + 20)
            rows = self.db.execute(
                "SELECT extract(epoch FROM started_at - created_at) * 1000, "
                f"extract(epoch FROM finished_at - created_at) * 1000 FROM {self.table} "
                "WHERE id > %s",
                (since,),
            ).fetchall()
        finally:
            self.stop_workers()
        start = [float(r[0]) for r in rows]
        done = [float(r[1]) for r in rows]
        return {
            "row": "latency",
            "floor": self.mode,
            "jobs": len(rows),
            "enqueue_to_start_p50_ms": pct(start, 0.5),
            "enqueue_to_start_p99_ms": pct(start, 0.99),
            "submit_to_done_p50_ms": pct(done, 0.5),
            "load_average": os.getloadavg()[0],
        }


def options() -> argparse.Namespace:
    p = parser(__doc__, "1 rep of 5 s rows, 100 latency jobs")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument("--threads", type=int, default=4, help="threads per worker process")
    p.add_argument("--latency-jobs", type=int, default=200)
    p.add_argument("--floors", default="bare,db", help="which floors, comma-separated")
    return parse(p, {"reps": 1, "seconds": 5, "latency_jobs": 100})


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for _ in range(args.reps):
        for mode in args.floors.split(","):
            with Floor(mode, args) as floor:
                rows = [floor.throughput()] + ([floor.latency()] if mode == "db" else [])
            for row in rows:
                results.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "wrk"}), flush=True)
    return results


def headline(results: list[dict[str, Any]]) -> list[str]:
    med = statistics.median
    lines = []
    for mode in ("bare", "db"):
        runs = [r for r in results if r["row"] == "throughput" and r["floor"] == mode]
        if not runs:
            continue
        parts = {
            k: med(r["cpu_ms_per_job_by_part"][k] for r in runs)
            for k in runs[0]["cpu_ms_per_job_by_part"]
        }
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in parts.items())
        each = ", ".join(f"{r['jobs_per_s']:.0f}" for r in runs)
        loads = ", ".join(f"{r['load_average']:.1f}" for r in runs)
        lines.append(
            f"Dramatiq floor {mode}, {runs[0]['workers']} x {runs[0]['threads']}: "
            f"{med(r['jobs_per_s'] for r in runs):.0f} jobs/s ({each}); CPU ms/job {cpu}; "
            f"load {loads}"
        )
    lat = [r for r in results if r["row"] == "latency"]
    if lat:
        lines.append(
            f"Dramatiq floor db at low load: enqueue->start p50 "
            f"{med(r['enqueue_to_start_p50_ms'] for r in lat):.2f} ms, p99 "
            f"{med(r['enqueue_to_start_p99_ms'] for r in lat):.2f} ms"
        )
    return lines


def main() -> None:
    args = options()
    load_before = os.getloadavg()[0]
    results = run(args)
    lines = headline(results)
    save("jobs_dramatiq_floor", {"results": results, "load_before": load_before}, lines)
    print(f"\nload average (1 min) at start {load_before:.1f}, at the end {os.getloadavg()[0]:.1f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
