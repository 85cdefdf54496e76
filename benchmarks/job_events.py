"""Job event streams (SSE) on PostgreSQL: woken by LISTEN/NOTIFY vs polling the DB.

    .venv/bin/python benchmarks/job_events.py            # --streams 50 --seconds 10
    .venv/bin/python benchmarks/job_events.py --quick    # 5 streams, 2 s, 200 commits

All on 127.0.0.1: a fresh PostgreSQL database, two ``pixelmill gateway`` processes on
it — one with notifications (the default), one with ``jobs.events_notify=false``
(polling every ``jobs.events_poll_s`` = 0.25 s) — and, for each in turn, ``--streams``
jobs with one event stream each (real HTTP, one thread per stream):

* **idle**: the jobs run but write nothing for ``--seconds``: database transactions per
  second (``pg_stat_database.xact_commit`` of the bench database, after waiting out
  PostgreSQL's late statistics flush of idle backends) and gateway CPU;
* **active**: this script writes one progress event per job every 0.5 s (as workers
  do) for ``--seconds``: event delivery latency (receipt time - the event's ``at``,
  p50/p99), gateway CPU, and transactions per second less the writer's own.

Then **the trigger's cost** to writers: ``--commits`` single-event transactions (the
shape of a worker's progress write) with and without the NOTIFY trigger, alternating,
three rounds each; median time per commit and PostgreSQL CPU per commit.

Every process it starts is stopped by PID; the database is dropped. Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa
from _harness import cpu_seconds, make_job, parse, parser, pct, pids_named, save, sse_events
from _harness.platform import Platform


class Stream(threading.Thread):
    """One SSE client: records each progress event's delivery latency."""

    def __init__(self, base: str, key: str, job_id: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{base}/v1/jobs/{job_id}/events"
        self.headers = {"Authorization": f"Bearer {key}"}
        self.latencies: list[float] = []
        self.record = threading.Event()
        self.opened = threading.Event()

    def run(self) -> None:
        with httpx.stream("GET", self.url, headers=self.headers, timeout=120) as resp:
            resp.raise_for_status()
            self.opened.set()
            for kind, data in sse_events(resp.iter_lines()):
                if kind == "progress" and self.record.is_set():
                    at = datetime.fromisoformat(data["at"]).timestamp()
                    self.latencies.append(time.time() - at)


def commits(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
                )
            ).scalar_one()
        )


def measure(bench: Platform, port: int, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    from pixelmill.backends.metadata.database import Database
    from pixelmill.backends.metadata.jobs import Finish, JobRepository

    db = Database(bench.db_url)
    repo = JobRepository(db)
    ids = []
    for _ in range(args.streams):
        job_id = make_job(repo, owner=bench.key_id, time_limit_s=600.0, max_retries=0)
        repo.start_task(job_id, 0)
        ids.append(job_id)
    streams = [Stream(f"http://127.0.0.1:{port}", bench.key, j) for j in ids]
    for s in streams:
        s.start()
    for s in streams:
        if not s.opened.wait(30):
            raise SystemExit(f"stream {s.url} did not open")
    # replays done, listener connected; and PostgreSQL has published the set-up's
    # counters (an idle backend flushes its statistics up to 10 s late)
    time.sleep(11.0)
    assert bench.engine is not None
    # idle
    c0, g0, t0 = commits(bench.engine), cpu_seconds(pid), time.monotonic()
    time.sleep(args.seconds)
    idle_s = time.monotonic() - t0
    c1, g1 = commits(bench.engine), cpu_seconds(pid)
    # active: one progress event per job every 0.5 s
    for s in streams:
        s.record.set()
    writes, t1 = 0, time.monotonic()
    step = 0
    while time.monotonic() - t1 < args.seconds:
        tick = time.monotonic()
        step += 1
        for j in ids:
            repo.progress(j, 0, min(step / 1000, 1.0), f"step {step}")
            writes += 1
        time.sleep(max(0.0, 0.5 - (time.monotonic() - tick)))
    time.sleep(1.2)
    active_s = time.monotonic() - t1
    c2, g2 = commits(bench.engine), cpu_seconds(pid)
    for j in ids:
        repo.finish_task(j, 0, Finish("succeeded"), aggregate=lambda _j, _ts: None)
    for s in streams:
        s.join(30)
    latencies = [x for s in streams for x in s.latencies]
    repo.dispose()
    db.dispose()
    return {
        "idle_tx_per_s": (c1 - c0) / idle_s,
        "idle_gateway_cpu_pct": (g1 - g0) / idle_s * 100,
        "active_tx_per_s": (c2 - c1 - writes) / active_s,
        "active_gateway_cpu_pct": (g2 - g1) / active_s * 100,
        "events": len(latencies),
        "written": writes,
        "latency_p50_ms": pct(latencies, 0.5) * 1000,
        "latency_p99_ms": pct(latencies, 0.99) * 1000,
    }


def postgres_cpu_seconds() -> float:
    """CPU seconds of every ``postgres`` process on the machine."""
    return cpu_seconds(pids_named("postgres"))


def trigger_cost(bench: Platform, commits_per_round: int) -> dict[str, list[float]]:
    """Time and PostgreSQL CPU per single-event commit, with and without the trigger."""
    from pixelmill.backends.metadata.database import Database
    from pixelmill.backends.metadata.jobs import JobRepository

    db = Database(bench.db_url)
    repo = JobRepository(db)
    job_id = make_job(repo, time_limit_s=600.0, max_retries=0)
    insert = sa.text(
        "INSERT INTO job_events (job_id, type, data, at) "
        "VALUES (:j, 'progress', '{\"progress\": 0.5}', now())"
    )
    out: dict[str, list[float]] = {"with": [], "without": [], "with_cpu": [], "without_cpu": []}
    with db.engine.connect() as conn:
        for _ in range(3):
            for mode in ("with", "without"):
                ddl = "ENABLE" if mode == "with" else "DISABLE"
                conn.execute(sa.text(f"ALTER TABLE job_events {ddl} TRIGGER job_events_notify"))
                conn.commit()
                cpu0, t0 = postgres_cpu_seconds(), time.perf_counter()
                for _ in range(commits_per_round):
                    conn.execute(insert, {"j": job_id})
                    conn.commit()
                out[mode].append((time.perf_counter() - t0) / commits_per_round * 1000)
                cpu = postgres_cpu_seconds() - cpu0
                out[f"{mode}_cpu"].append(cpu / commits_per_round * 1000)
        conn.execute(sa.text("ALTER TABLE job_events ENABLE TRIGGER job_events_notify"))
        conn.commit()
    repo.dispose()
    db.dispose()
    return out


def main() -> None:
    p = parser(__doc__, "5 streams, 2 s per phase, 200 commits per trigger-cost round")
    p.add_argument("--streams", type=int, default=50)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--commits", type=int, default=3000, help="per trigger-cost round")
    args = parse(p, {"streams": 5, "seconds": 2.0, "commits": 200})
    bench = Platform("pm_bench")
    results: dict[str, list[dict[str, Any]]] = {"notify": [], "poll": []}
    try:
        bench.open()
        gateways = {
            mode: bench.gateway(mode, PIXELMILL_JOBS__EVENTS_NOTIFY=notify)
            for mode, notify in (("notify", "true"), ("poll", "false"))
        }
        load = os.getloadavg()[0]
        for _ in range(args.reps):
            for mode, gateway in gateways.items():
                results[mode].append(measure(bench, gateway.port, gateway.proc.pid, args))
        cost = trigger_cost(bench, args.commits)
    finally:
        bench.close()
    report(results, args, load)
    med = statistics.median
    print(
        f"\nsingle-event commits, {args.commits} per round, 3 rounds each, alternating:\n\n"
        "| trigger | ms per commit (median) | PostgreSQL CPU ms per commit (median) |\n"
        "|---|---|---|\n"
        f"| NOTIFY trigger on | {med(cost['with']):.3f} | {med(cost['with_cpu']):.3f} |\n"
        f"| off | {med(cost['without']):.3f} | {med(cost['without_cpu']):.3f} |\n"
    )
    print(json.dumps(cost))
    save("job_events", {"results": results, "trigger_cost": cost}, headline(results, cost))


def headline(results: dict[str, list[dict[str, Any]]], cost: dict[str, list[float]]) -> list[str]:
    """Idle transactions and delivery latency, notify vs poll; the trigger's cost."""

    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in results[mode])

    return [
        f"idle DB tx/s: LISTEN/NOTIFY {med('notify', 'idle_tx_per_s'):.1f} vs polling "
        f"{med('poll', 'idle_tx_per_s'):.1f}; event latency p50 "
        f"{med('notify', 'latency_p50_ms'):.1f} vs {med('poll', 'latency_p50_ms'):.1f} ms",
        f"NOTIFY trigger: {statistics.median(cost['with']):.3f} vs "
        f"{statistics.median(cost['without']):.3f} ms per commit (on / off)",
    ]


def report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace, load: float) -> None:
    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in results[mode])

    print(
        f"\n{args.streams} streams, {args.seconds:.0f} s per phase, {args.reps} rep(s), "
        f"load average at start {load:.2f}\n"
    )
    print(
        "| streams woken by | idle: DB tx/s | idle: gateway CPU | active: event latency "
        "p50 / p99 | active: DB tx/s (less the writes) | active: gateway CPU | events |"
    )
    print("|---|---|---|---|---|---|---|")
    for mode, label in (("notify", "LISTEN/NOTIFY"), ("poll", "polling (0.25 s)")):
        print(
            f"| {label} | {med(mode, 'idle_tx_per_s'):.1f} | "
            f"{med(mode, 'idle_gateway_cpu_pct'):.1f} % | "
            f"{med(mode, 'latency_p50_ms'):.1f} / {med(mode, 'latency_p99_ms'):.1f} ms | "
            f"{med(mode, 'active_tx_per_s'):.1f} | {med(mode, 'active_gateway_cpu_pct'):.1f} % | "
            f"{med(mode, 'events'):.0f} of {med(mode, 'written'):.0f} |"
        )
    print("\n" + json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
