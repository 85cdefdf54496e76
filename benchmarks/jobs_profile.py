"""Where a job's time goes: SQL statements, transactions and broker round trips per job,
and CPU per job on each side, counted in-process on RabbitMQ + PostgreSQL.

    .venv/bin/python benchmarks/jobs_profile.py [--jobs 300] [--profile gateway|worker]
    .venv/bin/python benchmarks/jobs_profile.py --quick    # 30 jobs

Builds a container on a fresh PostgreSQL database and a private RabbitMQ namespace
(both dropped at the end), then

1. submits ``--jobs`` single-image ``flip`` jobs through the real ASGI app (in-process
   HTTP, the same route, auth and validation as ``pixelmill gateway``) and counts SQL
   statements, transactions (``COMMIT``s) and publishes per submit, with the CPU time
   of the submitting thread;
2. runs those tasks on an in-process RabbitMQ consumer (1 thread, like one worker
   thread) and counts the same per task.

``--profile gateway|worker`` also prints the top cProfile entries (CPU clock) of that
side. The numbers are per job, medians are not needed: counts are exact.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _harness import parse, parser, save, small_png
from _harness.services import AMQP, fresh_database
from sqlalchemy import event


class SqlCounter:
    """Counts statements (by verb) and commits on every engine of this process."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.commits = 0
        self.checkouts = 0
        self.enabled = False
        event.listen(sa.engine.Engine, "before_cursor_execute", self._on_execute)
        event.listen(sa.engine.Engine, "commit", self._on_commit)
        event.listen(sa.pool.Pool, "checkout", self._on_checkout)
        # the hot job statements run on the pooled psycopg connection, past SQLAlchemy
        from pixelmill.backends.metadata import pg_prepared

        for name in ("one", "rows"):
            real = getattr(pg_prepared, name)

            def counted(conn: Any, sql: str, params: Any, _real: Any = real) -> Any:
                if self.enabled:
                    verb = sql.lstrip().split(None, 1)[0].upper()
                    self.statements[verb] += 1
                    if conn.autocommit:  # a statement on its own is its own transaction
                        self.commits += 1
                return _real(conn, sql, params)

            setattr(pg_prepared, name, counted)

    def _on_execute(self, _conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        if self.enabled:
            self.statements[statement.lstrip().split(None, 1)[0].upper()] += 1

    def _on_commit(self, _conn: Any) -> None:
        if self.enabled:
            self.commits += 1

    def _on_checkout(self, *_: Any) -> None:
        if self.enabled:
            self.checkouts += 1

    def reset(self) -> None:
        self.statements.clear()
        self.commits = 0
        self.checkouts = 0

    def report(self, label: str, jobs: int, cpu_s: float, wall_s: float) -> dict[str, float]:
        """Print the counts per job; return them."""
        total = sum(self.statements.values())
        verbs = ", ".join(f"{v} {n / jobs:.2f}" for v, n in self.statements.most_common())
        print(
            f"{label}: {total / jobs:.2f} SQL statements/job ({verbs}); "
            f"{self.commits / jobs:.2f} commits/job; {self.checkouts / jobs:.2f} pool "
            f"checkouts/job; CPU {cpu_s * 1000 / jobs:.2f} ms/job; wall {wall_s * 1000 / jobs:.2f} "
            "ms/job"
        )
        return {
            "statements": total / jobs,
            "commits": self.commits / jobs,
            "checkouts": self.checkouts / jobs,
            "cpu_ms": cpu_s * 1000 / jobs,
            "wall_ms": wall_s * 1000 / jobs,
        }


@contextlib.contextmanager
def counted(
    counter: SqlCounter, label: str, jobs: int, side: str, args: argparse.Namespace
) -> Iterator[dict[str, float]]:
    """Count the block's SQL and time its CPU and wall clock (profiled when ``--profile``
    names ``side``); the per-job numbers land in the yielded dict on leaving."""
    profiler = cProfile.Profile(time.process_time) if args.profile == side else None
    result: dict[str, float] = {}
    counter.reset()
    counter.enabled = True
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    yield result
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    counter.enabled = False
    result.update(counter.report(label, jobs, cpu, wall))
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)


def submit_side(client: Any, jobs: Any, counter: SqlCounter, args: argparse.Namespace) -> Any:
    """``--jobs`` submits through the ASGI app, counted; the CPU of the whole process
    (TestClient runs the sync route in anyio's thread pool)."""
    published = Counter[str]()
    real_publish = jobs.broker.publish

    def counting_publish(*a: Any, **kw: Any) -> None:
        published["publish"] += 1
        real_publish(*a, **kw)

    jobs.broker.publish = counting_publish
    # cProfile sees one thread: the job service's submits are profiled where they run
    submit_profiler = cProfile.Profile(time.thread_time) if args.profile == "gateway" else None
    if submit_profiler is not None:
        real_submit = jobs.submit
        jobs.submit = lambda *a, **kw: submit_profiler.runcall(real_submit, *a, **kw)
    image = client.post("/v1/images", content=small_png(16, 16)).json()["id"]
    body: dict[str, Any] = {"inputs": [image], "pipeline": [{"op": "flip"}]}
    if args.no_output:
        body["output"] = {"image": False}
    for _ in range(20):  # warm-up: connections, statement caches, queue declares
        client.post("/v1/jobs", json=body)
    jobs.flush_marks()
    published.clear()
    with counted(counter, "submit (HTTP, in-process)", args.jobs, "", args) as result:
        for _ in range(args.jobs):
            answer = client.post("/v1/jobs", json=body)
            assert answer.status_code == 202, answer.text
        jobs.flush_marks()
    result["publishes"] = published["publish"] / args.jobs
    if submit_profiler is not None:
        pstats.Stats(submit_profiler).sort_stats("cumulative").print_stats(args.top)
        pstats.Stats(submit_profiler).sort_stats("tottime").print_stats(args.top)
    print(f"  broker publishes/job: {result['publishes']:.2f}")
    return result


def worker_side(jobs: Any, counter: SqlCounter, total: int, args: argparse.Namespace) -> Any:
    """One consumer thread drains the ``total`` tasks submitted, counted (``jobs``: the
    process's job daemon)."""
    from pixelmill.backends.broker.rabbitmq import RabbitmqBroker

    done = threading.Event()
    seen = Counter[str]()
    runner = jobs.runner
    real_handle = runner.handle

    # cProfile sees one thread: the handler's runs are profiled where they run
    task_profiler = cProfile.Profile(time.thread_time) if args.profile == "worker" else None

    def handle(delivery: Any) -> None:
        if task_profiler is not None:
            task_profiler.runcall(real_handle, delivery)
        else:
            real_handle(delivery)
        seen["n"] += 1
        if seen["n"] >= total:
            done.set()

    assert isinstance(getattr(jobs.broker, "inner", jobs.broker), RabbitmqBroker)
    with counted(counter, "task (1 consumer thread)", total, "", args) as result:
        consumer = jobs.broker.serve(
            ["transform"], handle, on_dead_letter=runner.dead_letter, threads=1
        )
        if not done.wait(300):
            raise SystemExit(f"only {seen['n']} of {total} tasks ran")
    consumer.stop(5)
    if task_profiler is not None:
        pstats.Stats(task_profiler).sort_stats("cumulative").print_stats(args.top)
        pstats.Stats(task_profiler).sort_stats("tottime").print_stats(args.top)
    return result


def main() -> None:
    p = parser(__doc__, "30 jobs")
    p.add_argument("--jobs", type=int, default=300)
    p.add_argument("--profile", choices=("gateway", "worker"), default=None)
    p.add_argument("--top", type=int, default=35)
    p.add_argument("--no-output", action="store_true", help="output.image=false (no result)")
    p.add_argument(
        "--quota", action="store_true", help="check a concurrent-jobs quota at each submit"
    )
    args = parse(p, {"jobs": 30})

    from fastapi.testclient import TestClient

    from pixelmill.backends.broker.rabbitmq import RabbitmqBroker
    from pixelmill.runtime.container import build_container
    from pixelmill.services.gateway.app import create_app
    from pixelmill.settings import Settings

    counter = SqlCounter()
    tmp = Path(tempfile.mkdtemp(prefix="pm-jobs-profile-"))
    namespace = f"pmprof-{uuid.uuid4().hex[:8]}"
    with fresh_database("pm_prof") as db_url:
        settings = Settings(
            data_dir=tmp / "data",
            database={"url": db_url},
            broker={"url": AMQP, "namespace": namespace},
            storage={"url": f"file://{tmp / 'objects'}"},
            cache={"url": "none://"},
            jobs={"max_queued_tasks": 1_000_000, "embedded_threads": 0},
            ratelimit={"enabled": False},  # thousands of submits a minute from one key
            # a member submitting thousands of jobs with no worker yet: past any default
            # concurrent-jobs quota; --quota checks one that is never reached (its cost)
            quota={"enabled": True, "concurrent_jobs": 10**9} if args.quota else {"enabled": False},
        )
        container = build_container(settings)
        jobs = container.jobs
        try:
            user = container.users.create("profiler")
            _, key = container.keys.create("profile", role="write", user_id=user.id)
            with TestClient(create_app(container)) as client:
                client.headers["Authorization"] = f"Bearer {key}"
                submit = submit_side(client, jobs, counter, args)
            task = worker_side(container.job_daemon, counter, args.jobs + 20, args)
            with container.db.begin() as conn:
                states = conn.execute(
                    sa.text("SELECT state, count(*) FROM jobs GROUP BY state")
                ).all()
            print("  job states:", dict(states))
        finally:
            container.close()
            shutil.rmtree(tmp, ignore_errors=True)
            RabbitmqBroker(AMQP, namespace=namespace).purge()
    save(
        "jobs_profile",
        {"jobs": args.jobs, "submit": submit, "task": task},
        [
            f"per job: submit {submit['statements']:.2f} SQL statements, {submit['commits']:.2f} "
            f"commits, {submit['publishes']:.2f} publishes; task {task['statements']:.2f} "
            f"statements, {task['commits']:.2f} commits"
        ],
    )


if __name__ == "__main__":
    main()
