"""Async jobs end to end on RabbitMQ + PostgreSQL: throughput with 1 and 2 worker
processes, enqueue -> start latency at low load, per-job platform overhead.

One command (about 15 minutes; ``--reps 1`` about 5, ``--quick`` about 3)::

    .venv/bin/python benchmarks/jobs.py            # or --reps 1, --quick

What it does, all on 127.0.0.1 (the machine's RabbitMQ and PostgreSQL; every process
it starts is stopped by PID at the end; its DB and queues are dropped):

1. creates a fresh PostgreSQL database, migrates it, creates an API key, and starts
   ``pixelmill gateway`` (one process; broker ``amqp://``, storage a local folder,
   render cache off) — a real HTTP server;
2. uploads one 16x16 PNG, and times the trivial op alone in-process (decode, ``flip``,
   encode: the op's own time);
3. for 1 and 2 ``pixelmill worker`` processes (``--threads`` each), interleaved,
   ``--reps`` times:

   * **throughput**: wrk POSTs ``{"inputs": [img], "pipeline": [{"op": "flip"}]}`` for
     ``--seconds`` at 16 connections; every accepted job is then waited for. Throughput
     = jobs / (last ``finished_at`` - first ``created_at``) from the DB: HTTP submit to
     ``succeeded``. Two variants: ``store`` (the flipped image is encoded and stored as
     a result, fsync and all) and ``no-output`` (``output.image=false``: the platform's
     own cost — HTTP, DB transitions, broker, worker — with a lazy op);
   * **latency at low load**: 200 jobs one after another, 20 ms apart; enqueue -> start
     = task ``started_at - created_at`` (p50, p99) and submit -> succeeded (p50);
     per-job overhead = submit -> succeeded p50 minus the op's own time;
   * **each side alone** (``store``): wrk submits for ``--seconds`` with no worker running
     (the gateway alone: submits/s, its CPU per submit), then 1 or 2 workers drain that
     backlog (the workers alone: jobs/s, their CPU per job) — where the end-to-end limit is;
   * **batch jobs** (a separate row, not the headline): wrk POSTs jobs of
     ``--batch-inputs`` images each (one task per image); tasks/s end to end.

CPU per job is counted from ``/proc`` for the gateway, the workers, RabbitMQ (the
``beam.smp`` process) and PostgreSQL (every ``postgres`` process: on a shared machine
this includes other sessions' queries). The load average is printed before and after.

``--quick``: 1 rep of 5 s runs, 100 latency jobs; ``benchmarks/run.py`` runs ``--quick
--seconds 2 --latency-jobs 30 --batch-inputs 5`` (about 1.5 minutes).

The platform comes from ``_harness.platform``; the report is ``jobs_report.py``. Prints
Markdown; raw numbers go to ``benchmarks/.work/jobs-results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from typing import Any

from _harness import Server, cpu_seconds, parse, parser, pct, save, small_png, wrk
from _harness.platform import Platform
from _harness.services import CpuMeter
from jobs_report import headline, report

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("PM_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PM_KEY")
"""


class Bench:
    """The measurements, on one :class:`Platform` with one gateway."""

    def __init__(self, args: argparse.Namespace) -> None:
        import httpx

        self.args = args
        self.platform = Platform("pm_bench")
        try:
            self.platform.open()
            self.gateway = self.platform.gateway()
            self.http = httpx.Client(
                base_url=self.gateway.url,
                headers={"Authorization": f"Bearer {self.platform.key}"},
                timeout=30,
            )
            self.png = small_png(16, 16)
            self.image = self.http.post("/v1/images", content=self.png).json()["id"]
            self.batch_images = [
                self.http.post("/v1/images", content=small_png(16, 8 + n)).json()["id"]
                for n in range(args.batch_inputs)
            ]
        except BaseException:
            self.platform.close()  # the database and any process started so far
            raise

    def close(self) -> None:
        self.http.close()
        self.platform.close()

    def op_time_ms(self) -> float:
        """The trivial op alone, in-process: decode the PNG, flip, encode (median ms)."""
        from pixelmill.imaging import ops, pipeline
        from pixelmill.imaging.encode import encode
        from pixelmill.imaging.formats import ImageFormat

        steps = ops.parse_pipeline([{"op": "flip"}])
        samples = []
        for _ in range(300):
            t0 = time.perf_counter()
            encode(pipeline.run(self.png, steps), ImageFormat.PNG, quality=82)
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples) * 1000

    def body(self, variant: str) -> dict[str, Any]:
        body: dict[str, Any] = {"inputs": [self.image], "pipeline": [{"op": "flip"}]}
        if variant == "no-output":
            body["output"] = {"image": False}
        return body

    def sql(self, query: str, since: str) -> Any:
        """The one row of ``query`` (``:s`` = ``since``) on the benchmark's poll engine."""
        import sqlalchemy as sa

        with self.platform.engine.connect() as conn:
            return conn.execute(sa.text(query), {"s": since}).one()

    def wait_all(self, since: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        query = "SELECT count(*) FROM jobs WHERE id > :s AND state IN ('queued','running')"
        while time.monotonic() < deadline:
            if self.sql(query, since)[0] == 0:
                return
            time.sleep(0.2)
        raise SystemExit("jobs did not finish in time")

    def marker(self) -> str:
        """A job id below every job submitted from now on."""
        from pixelmill.backends.metadata.jobs import new_job_id

        return new_job_id()[:12] + "0" * 20

    def count_since(self, since: str) -> int:
        return int(self.sql("SELECT count(*) FROM jobs WHERE id > :s", since)[0])

    def submit(self, body: dict[str, Any], seconds: int) -> str:
        """wrk POSTs ``body`` to /v1/jobs for ``seconds`` at 16 connections."""
        script = self.platform.tmp / "post.lua"
        script.write_text(WRK_SCRIPT)
        env = {**os.environ, "PM_BODY": json.dumps(body), "PM_KEY": self.platform.key}
        url = f"{self.gateway.url}/v1/jobs"
        return wrk(url, conc=16, seconds=seconds, threads=2, script=script, env=env)

    def workers(self, count: int) -> list[Server]:
        return self.platform.workers(count, self.args.threads)

    def meter(self, workers: list[Server]) -> CpuMeter:
        parts = {"gateway": [self.gateway.proc.pid], "workers": [w.proc.pid for w in workers]}
        return CpuMeter(parts, self.platform.backends)

    def throughput(self, workers: int, variant: str) -> dict[str, Any]:
        """Jobs/s from HTTP submit to succeeded, and CPU per job of each part."""
        procs = self.workers(workers)
        try:
            for _ in range(50):  # warm-up: connections, caches
                self.http.post("/v1/jobs", json=self.body(variant))
            self.wait_all("0")
            since = self.marker()
            pids = [self.gateway.proc.pid, *(w.proc.pid for w in procs)]
            cpu0, meter = cpu_seconds(pids), self.meter(procs)
            out = self.submit(self.body(variant), self.args.seconds)
            self.wait_all(since)
            cpu = cpu_seconds(pids) - cpu0
            count, first, last, ok = self.sql(
                "SELECT count(*), min(created_at), max(finished_at), "
                "sum(CASE WHEN state='succeeded' THEN 1 ELSE 0 END) FROM jobs WHERE id > :s",
                since,
            )
            return {
                "workers": workers,
                "variant": variant,
                "jobs": count,
                "succeeded": ok,
                "jobs_per_s": count / (last - first).total_seconds(),
                "cpu_ms_per_job": cpu * 1000 / count,
                "cpu_ms_per_job_by_part": meter.stop(count),
                "load_average": os.getloadavg()[0],
                "wrk": out.strip().splitlines()[-2:],
            }
        finally:
            for w in procs:
                w.stop(timeout=30)

    def latency(self, workers: int) -> dict[str, Any]:
        """One job every 20 ms: enqueue -> start and submit -> succeeded percentiles."""
        import sqlalchemy as sa

        procs = self.workers(workers)
        try:
            for _ in range(20):
                self.http.post("/v1/jobs", json=self.body("store"))
            self.wait_all("0")
            since = self.marker()
            for _ in range(self.args.latency_jobs):
                self.http.post("/v1/jobs", json=self.body("store"))
                time.sleep(0.02)
            self.wait_all(since)
            with self.platform.engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT t.started_at - t.created_at, j.finished_at - j.created_at "
                        "FROM job_tasks t JOIN jobs j ON j.id = t.job_id WHERE j.id > :s"
                    ),
                    {"s": since},
                ).all()
        finally:
            for w in procs:
                w.stop(timeout=30)
        start = [r[0].total_seconds() * 1000 for r in rows]
        done = [r[1].total_seconds() * 1000 for r in rows]
        return {
            "workers": workers,
            "jobs": len(rows),
            "enqueue_to_start_p50_ms": pct(start, 0.5),
            "enqueue_to_start_p99_ms": pct(start, 0.99),
            "submit_to_succeeded_p50_ms": pct(done, 0.5),
            "submit_to_succeeded_p99_ms": pct(done, 0.99),
        }

    def split(self, workers: int) -> dict[str, Any]:
        """The gateway alone (a backlog submitted with no worker running), then the
        workers alone (draining it)."""
        since = self.marker()
        gateway0 = cpu_seconds(self.gateway.proc.pid)
        began = time.monotonic()
        self.submit(self.body("store"), self.args.seconds)
        elapsed = time.monotonic() - began
        submitted = self.count_since(since)
        gateway_cpu = cpu_seconds(self.gateway.proc.pid) - gateway0
        procs = self.workers(workers)
        try:
            meter = self.meter(procs)
            self.wait_all(since)
            cpu = meter.stop(submitted)
            first, last = self.sql(
                "SELECT min(started_at), max(finished_at) FROM job_tasks WHERE job_id > :s", since
            )
        finally:
            for w in procs:
                w.stop(timeout=30)
        return {
            "workers": workers,
            "jobs": submitted,
            "submits_per_s": submitted / elapsed,
            "gateway_cpu_ms_per_submit": gateway_cpu * 1000 / submitted,
            "drain_jobs_per_s": submitted / (last - first).total_seconds(),
            "worker_cpu_ms_per_job": cpu["workers"],
            "load_average": os.getloadavg()[0],
        }

    def batch(self, workers: int) -> dict[str, Any]:
        """Jobs of ``--batch-inputs`` images each (one task per image), end to end."""
        procs = self.workers(workers)
        try:
            body = {"inputs": self.batch_images, "pipeline": [{"op": "flip"}]}
            self.http.post("/v1/jobs", json=body)
            self.wait_all("0")
            since = self.marker()
            self.submit(body, self.args.seconds)
            self.wait_all(since)
            tasks, first, last = self.sql(
                "SELECT count(*), min(j.created_at), max(t.finished_at) FROM jobs j "
                "JOIN job_tasks t ON t.job_id = j.id WHERE j.id > :s",
                since,
            )
        finally:
            for w in procs:
                w.stop(timeout=30)
        return {
            "workers": workers,
            "jobs": self.count_since(since),
            "tasks": tasks,
            "tasks_per_s": tasks / (last - first).total_seconds(),
            "load_average": os.getloadavg()[0],
        }


def options() -> argparse.Namespace:
    p = parser(__doc__, "1 rep of 5 s runs, 100 latency jobs")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--threads", type=int, default=4, help="task threads per worker")
    p.add_argument("--latency-jobs", type=int, default=200)
    p.add_argument("--batch-inputs", type=int, default=20, help="images per batch job")
    p.add_argument(
        "--only",
        default="throughput,latency,split,batch",
        help="comma-separated parts to run (e.g. throughput for a quick before/after)",
    )
    p.add_argument("--variants", default="store,no-output", help="throughput variants")
    p.add_argument("--workers", default="1,2", help="worker process counts, comma-separated")
    args = parse(p, {"reps": 1, "seconds": 5, "latency_jobs": 100})
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    return args


def run(bench: Bench, parts: set[str], reps: int) -> dict[str, list[dict[str, Any]]]:
    """Every part ``reps`` times, interleaved; each result printed as it comes."""
    results: dict[str, list[dict[str, Any]]] = {"runs": [], "latency": [], "split": []}
    results["batch"] = []
    counts = [int(n) for n in bench.args.workers.split(",")]
    for _ in range(reps):
        steps: list[tuple[str, Any]] = []
        if "throughput" in parts:
            for variant in bench.args.variants.split(","):
                steps += [("runs", lambda w=w, v=variant: bench.throughput(w, v)) for w in counts]
        if "latency" in parts:
            steps.append(("latency", lambda: bench.latency(1)))
        for part in ("split", "batch"):
            if part in parts:
                steps += [(part, lambda w=w, p=part: getattr(bench, p)(w)) for w in counts]
        for key, step in steps:
            results[key].append(step())
            print(json.dumps({k: v for k, v in results[key][-1].items() if k != "wrk"}), flush=True)
    return results


def main() -> None:
    args = options()
    load_before = os.getloadavg()
    bench = Bench(args)
    try:
        op_ms = bench.op_time_ms()
        results: dict[str, Any] = dict(run(bench, set(args.only.split(",")), args.reps))
    finally:
        bench.close()
    results |= {"op_ms": op_ms, "load_average": load_before}
    results["load_average_after"] = os.getloadavg()
    save("jobs", results, headline(results))
    report(results, args)


if __name__ == "__main__":
    main()
