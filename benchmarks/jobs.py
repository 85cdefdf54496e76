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

Prints Markdown; raw numbers go to ``benchmarks/.work/jobs-results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work"
PG_ADMIN = os.environ.get(
    "PIXELMILL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
AMQP = os.environ.get("PIXELMILL_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
CLI = [sys.executable, "-c", "from pixelmill.runtime.cli import main; main()"]

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("PM_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PM_KEY")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """utime + stime of every ``postgres`` process on the machine (seconds)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return total


def postgres_server_pids() -> list[int]:
    """The postmaster and PostgreSQL's own processes (WAL writer, checkpointer, ...),
    without client backends."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() != "postgres":
                    continue
                if b"(" not in (entry / "cmdline").read_bytes():  # backends: "host(port)"
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def process_cpu(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        try:
            found[pid] = cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue
    return found


def rabbitmq_pid() -> int | None:
    out = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True).stdout
    return int(out.split()[0]) if out.split() else None


class CpuMeter:
    """CPU seconds used by the gateway, the workers, RabbitMQ and PostgreSQL between
    construction and :meth:`stop`.

    ``postgres`` counts the server's own processes and the backends of the benchmark's
    database (``backends()``: pixelmill's connections, not the benchmark's polls);
    ``postgres_all`` every ``postgres`` process on the machine, other sessions included
    (what the numbers before the floor comparison counted)."""

    def __init__(self, gateway: int, workers: list[int], backends: Any = None) -> None:
        self.pids = {"gateway": [gateway], "workers": workers}
        self.rabbit = rabbitmq_pid()
        self.backends = backends or list
        self.start = self._read()
        self.pg_start = process_cpu([*self.backends(), *postgres_server_pids()])

    def _read(self) -> dict[str, float]:
        now = {k: sum(cpu_seconds(p) for p in pids) for k, pids in self.pids.items()}
        now["rabbitmq"] = cpu_seconds(self.rabbit) if self.rabbit else 0.0
        now["postgres_all"] = postgres_cpu_seconds()
        return now

    def stop(self, jobs: int) -> dict[str, float]:
        """CPU milliseconds per job of each part (and their ``total``, which counts
        ``postgres``, not ``postgres_all``)."""
        end = self._read()
        pg_end = process_cpu([*self.backends(), *postgres_server_pids()])
        # a backend that started meanwhile counts from 0; one that ended is lost (rare:
        # the pools keep their connections)
        pg = sum(cpu - self.pg_start.get(pid, 0.0) for pid, cpu in pg_end.items())
        per = {k: (end[k] - self.start[k]) * 1000 / max(jobs, 1) for k in end}
        per["postgres"] = pg * 1000 / max(jobs, 1)
        per["total"] = sum(v for k, v in per.items() if k != "postgres_all")
        return per


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="pm-jobs-bench-"))
        self.db_name = f"pm_bench_{uuid.uuid4().hex[:10]}"
        self.db_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.db_name}"
        self.namespace = f"pmbench-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update(
            {
                "PIXELMILL_DATA_DIR": str(self.tmp / "data"),
                "PIXELMILL_DATABASE__URL": self.db_url,
                "PIXELMILL_BROKER__URL": AMQP,
                "PIXELMILL_BROKER__NAMESPACE": self.namespace,
                "PIXELMILL_STORAGE__URL": f"file://{self.tmp / 'objects'}",
                "PIXELMILL_CACHE__URL": "none://",
                "PIXELMILL_JOBS__MAX_QUEUED_TASKS": "1000000",
                "PIXELMILL_OBSERVABILITY__LOG_LEVEL": "WARNING",
            }
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        self.engine: sa.Engine | None = None
        self.key = self.key_id = ""
        self.image = ""

    # -- set-up ---------------------------------------------------------------------------
    def setup_database(self) -> None:
        """A fresh, migrated database with a write key (``self.key``)."""
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.db_name}"'))
        subprocess.run([*CLI, "db", "upgrade"], env=self.env, check=True, capture_output=True)
        out = subprocess.run(
            [*CLI, "keys", "create", "bench", "--role", "write"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        created = json.loads(out.strip().splitlines()[-1])
        self.key, self.key_id = created["key"], created["id"]
        self.engine = sa.create_engine(
            self.db_url, connect_args={"application_name": "pm-bench-poll"}
        )

    def wait_healthy(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gateway did not start")
            time.sleep(0.2)

    def setup(self) -> None:
        self.setup_database()
        gateway = self.spawn(
            ["gateway", "--port", str(self.port), "--server-workers", "1"], "gateway"
        )
        self.gateway_pid = gateway.pid
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
        )
        self.wait_healthy(self.port, gateway)
        sys.path.insert(0, str(ROOT))
        from tests.helpers import make_image

        self.png = make_image(16, 16, fmt=".png")
        self.image = self.http.post("/v1/images", content=self.png).json()["id"]
        self.batch_images = [
            self.http.post("/v1/images", content=make_image(16, 8 + n, fmt=".png")).json()["id"]
            for n in range(self.args.batch_inputs)
        ]

    def backends(self) -> list[int]:
        """PostgreSQL backends of pixelmill's processes (the bench database's, less ours)."""
        with self.admin.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :db "
                    "AND application_name <> 'pm-bench-poll'"
                ),
                {"db": self.db_name},
            ).all()
        return [int(r[0]) for r in rows]

    def spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen([*CLI, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_workers(self, count: int) -> list[subprocess.Popen[bytes]]:
        workers = []
        for _ in range(count):
            proc = self.spawn(
                ["worker", "--queues", "transform", "--threads", str(self.args.threads)], "worker"
            )
            workers.append(proc)
        for proc in workers:
            log = self.tmp / f"worker-{self.procs.index(proc)}.log"
            deadline = time.monotonic() + 60
            while b"worker ready" not in log.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(log.read_text())
                time.sleep(0.1)
        return workers

    def stop(self, procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def teardown(self) -> None:
        self.stop(self.procs)
        if self.engine is not None:
            self.engine.dispose()
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        self.admin.dispose()
        from pixelmill.backends.broker.rabbitmq import RabbitmqBroker

        RabbitmqBroker(AMQP, namespace=self.namespace).purge()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- measurements --------------------------------------------------------------------
    def op_time_ms(self) -> float:
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

    def wait_all(self, since: str, timeout: float = 600) -> None:
        assert self.engine is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                left = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM jobs WHERE id > :s AND state IN ('queued','running')"
                    ),
                    {"s": since},
                ).scalar_one()
            if left == 0:
                return
            time.sleep(0.2)
        raise SystemExit("jobs did not finish in time")

    def marker(self) -> str:
        from pixelmill.backends.metadata.jobs import new_job_id

        return new_job_id()[:12] + "0" * 20

    def throughput(self, workers: int, variant: str) -> dict[str, Any]:
        assert self.engine is not None
        procs = self.start_workers(workers)
        try:
            for _ in range(50):  # warm-up: connections, caches
                self.http.post("/v1/jobs", json=self.body(variant))
            self.wait_all("0")
            since = self.marker()
            script = self.tmp / "post.lua"
            script.write_text(WRK_SCRIPT)
            env = dict(self.env, PM_BODY=json.dumps(self.body(variant)), PM_KEY=self.key)
            cpu0 = {p.pid: cpu_seconds(p.pid) for p in [*procs, self.procs[0]]}
            meter = CpuMeter(self.gateway_pid, [p.pid for p in procs], self.backends)
            wrk = subprocess.run(
                [
                    "wrk",
                    "-t2",
                    "-c16",
                    f"-d{self.args.seconds}s",
                    "-s",
                    str(script),
                    f"http://127.0.0.1:{self.port}/v1/jobs",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            self.wait_all(since)
            cpu = sum(cpu_seconds(pid) - before for pid, before in cpu0.items())
            with self.engine.connect() as conn:
                row = conn.execute(
                    sa.text(
                        "SELECT count(*), min(created_at), max(finished_at), "
                        "sum(CASE WHEN state='succeeded' THEN 1 ELSE 0 END) "
                        "FROM jobs WHERE id > :s"
                    ),
                    {"s": since},
                ).one()
            count, first, last, ok = row
            span = (last - first).total_seconds()
            return {
                "workers": workers,
                "variant": variant,
                "jobs": count,
                "succeeded": ok,
                "jobs_per_s": count / span,
                "cpu_ms_per_job": cpu * 1000 / count,
                "cpu_ms_per_job_by_part": meter.stop(count),
                "load_average": os.getloadavg()[0],
                "wrk": wrk.strip().splitlines()[-2:],
            }
        finally:
            self.stop(procs)

    def latency(self, workers: int) -> dict[str, Any]:
        assert self.engine is not None
        procs = self.start_workers(workers)
        try:
            for _ in range(20):
                self.http.post("/v1/jobs", json=self.body("store"))
            self.wait_all("0")
            since = self.marker()
            for _ in range(self.args.latency_jobs):
                self.http.post("/v1/jobs", json=self.body("store"))
                time.sleep(0.02)
            self.wait_all(since)
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT t.started_at - t.created_at, j.finished_at - j.created_at "
                        "FROM job_tasks t JOIN jobs j ON j.id = t.job_id WHERE j.id > :s"
                    ),
                    {"s": since},
                ).all()
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
        finally:
            self.stop(procs)

    def wrk(self, body: dict[str, Any], seconds: int) -> None:
        script = self.tmp / "post.lua"
        script.write_text(WRK_SCRIPT)
        env = dict(self.env, PM_BODY=json.dumps(body), PM_KEY=self.key)
        url = f"http://127.0.0.1:{self.port}/v1/jobs"
        subprocess.run(
            ["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", str(script), url],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )

    def count_since(self, since: str) -> int:
        assert self.engine is not None
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT count(*) FROM jobs WHERE id > :s"), {"s": since}
                ).scalar_one()
            )

    def split(self, workers: int) -> dict[str, Any]:
        """The gateway alone (a backlog submitted with no worker running), then the
        workers alone (draining it)."""
        assert self.engine is not None
        since = self.marker()
        gateway0 = cpu_seconds(self.gateway_pid)
        began = time.monotonic()
        self.wrk(self.body("store"), self.args.seconds)
        elapsed = time.monotonic() - began
        submitted = self.count_since(since)
        gateway_cpu = cpu_seconds(self.gateway_pid) - gateway0
        procs = self.start_workers(workers)
        try:
            meter = CpuMeter(self.gateway_pid, [p.pid for p in procs], self.backends)
            self.wait_all(since)
            cpu = meter.stop(submitted)
            with self.engine.connect() as conn:
                first, last = conn.execute(
                    sa.text(
                        "SELECT min(started_at), max(finished_at) FROM job_tasks WHERE job_id > :s"
                    ),
                    {"s": since},
                ).one()
        finally:
            self.stop(procs)
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
        assert self.engine is not None
        procs = self.start_workers(workers)
        try:
            body = {"inputs": self.batch_images, "pipeline": [{"op": "flip"}]}
            self.http.post("/v1/jobs", json=body)
            self.wait_all("0")
            since = self.marker()
            self.wrk(body, self.args.seconds)
            self.wait_all(since)
            with self.engine.connect() as conn:
                tasks, first, last = conn.execute(
                    sa.text(
                        "SELECT count(*), min(j.created_at), max(t.finished_at) FROM jobs j "
                        "JOIN job_tasks t ON t.job_id = j.id WHERE j.id > :s"
                    ),
                    {"s": since},
                ).one()
        finally:
            self.stop(procs)
        return {
            "workers": workers,
            "jobs": self.count_since(since),
            "tasks": tasks,
            "tasks_per_s": tasks / (last - first).total_seconds(),
            "load_average": os.getloadavg()[0],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 rep, 5 s runs")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=4, help="task threads per worker")
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--batch-inputs", type=int, default=20, help="images per batch job")
    parser.add_argument(
        "--only",
        default="throughput,latency,split,batch",
        help="comma-separated parts to run (e.g. throughput for a quick before/after)",
    )
    args = parser.parse_args()
    if args.quick:
        args.reps, args.seconds, args.latency_jobs = 1, 5, 100
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    parts = set(args.only.split(","))
    bench = Bench(args)
    results: dict[str, Any] = {
        "load_average": os.getloadavg(),
        "runs": [],
        "latency": [],
        "split": [],
        "batch": [],
    }
    try:
        bench.setup()
        op_ms = bench.op_time_ms()
        results["op_ms"] = op_ms
        for _ in range(args.reps):
            for variant in ("store", "no-output") if "throughput" in parts else ():
                for workers in (1, 2):
                    run = bench.throughput(workers, variant)
                    print(json.dumps({k: v for k, v in run.items() if k != "wrk"}), flush=True)
                    results["runs"].append(run)
            if "latency" in parts:
                lat = bench.latency(1)
                print(json.dumps(lat), flush=True)
                results["latency"].append(lat)
            for workers in (1, 2) if "split" in parts else ():
                split = bench.split(workers)
                print(json.dumps(split), flush=True)
                results["split"].append(split)
            for workers in (1, 2) if "batch" in parts else ():
                batch = bench.batch(workers)
                print(json.dumps(batch), flush=True)
                results["batch"].append(batch)
    finally:
        bench.teardown()
    results["load_average_after"] = os.getloadavg()
    WORK.mkdir(exist_ok=True)
    (WORK / "jobs-results.json").write_text(json.dumps(results, indent=2, default=str))
    report(results, args)


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    med = statistics.median
    print(
        f"\nop alone (decode 16x16 PNG, flip, encode): {results['op_ms']:.2f} ms; "
        f"load average (1 min) at start {results['load_average'][0]:.1f}, at the end "
        f"{results['load_average_after'][0]:.1f}; "
        f"{args.reps} rep(s), {args.seconds} s each, {args.threads} threads per worker\n"
    )
    print(
        "| variant | worker processes | jobs/s (median; runs) | CPU ms/job: gateway, "
        "workers, RabbitMQ, PostgreSQL = total | PostgreSQL, all sessions | load |"
    )
    print("|---|---|---|---|---|---|")
    for variant in ("store", "no-output") if results["runs"] else ():
        base = None
        for workers in (1, 2):
            runs = [
                r for r in results["runs"] if r["variant"] == variant and r["workers"] == workers
            ]
            rate = med(r["jobs_per_s"] for r in runs)
            base = base or rate
            each = ", ".join(f"{r['jobs_per_s']:.0f}" for r in runs)
            parts = {
                k: med(r["cpu_ms_per_job_by_part"][k] for r in runs)
                for k in ("gateway", "workers", "rabbitmq", "postgres", "total", "postgres_all")
            }
            cpu = (
                f"{parts['gateway']:.2f}, {parts['workers']:.2f}, {parts['rabbitmq']:.2f}, "
                f"{parts['postgres']:.2f} = {parts['total']:.2f}"
            )
            loads = ", ".join(f"{r['load_average']:.1f}" for r in runs)
            print(
                f"| {variant} | {workers} | {rate:.0f} ({each}): {rate / base:.2f}x | {cpu} | "
                f"{parts['postgres_all']:.2f} | {loads} |"
            )
    if results["split"]:
        print("\n| each side alone (store) | worker processes | rate (median) | CPU ms/job |")
        print("|---|---|---|---|")
        split = results["split"]
        sub = med(r["submits_per_s"] for r in split)
        gcpu = med(r["gateway_cpu_ms_per_submit"] for r in split)
        print(f"| gateway, no worker running | 0 | {sub:.0f} submits/s | {gcpu:.2f} (gateway) |")
        for workers in (1, 2):
            runs = [r for r in split if r["workers"] == workers]
            rate = med(r["drain_jobs_per_s"] for r in runs)
            wcpu = med(r["worker_cpu_ms_per_job"] for r in runs)
            print(
                f"| workers draining that backlog | {workers} | {rate:.0f} jobs/s | "
                f"{wcpu:.2f} (workers) |"
            )
    if results["batch"]:
        print(
            f"\n| batch jobs of {args.batch_inputs} images (store) | worker processes | tasks/s |"
        )
        print("|---|---|---|")
        for workers in (1, 2):
            runs = [r for r in results["batch"] if r["workers"] == workers]
            rate = med(r["tasks_per_s"] for r in runs)
            each = ", ".join(f"{r['tasks_per_s']:.0f}" for r in runs)
            print(f"| one POST per job | {workers} | {rate:.0f} ({each}) |")
    lat = results["latency"]
    if not lat:
        return
    p50 = med(r["enqueue_to_start_p50_ms"] for r in lat)
    p99 = med(r["enqueue_to_start_p99_ms"] for r in lat)
    e2e = med(r["submit_to_succeeded_p50_ms"] for r in lat)
    print(
        f"\nlow load (1 worker, one job every 20 ms): enqueue->start p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms; submit->succeeded p50 {e2e:.1f} ms; "
        f"per-job overhead over the op {e2e - results['op_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
