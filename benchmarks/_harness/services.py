"""The machine's PostgreSQL and RabbitMQ as the job benchmarks use them: where they are,
a throw-away database, and the CPU their processes spend per job (from ``/proc``)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .procs import cpu_by_pid, pids_named

PG_ADMIN = os.environ.get(
    "PIXELMILL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
AMQP = os.environ.get("PIXELMILL_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")


def missing(*servers: str) -> str | None:
    """Why a benchmark cannot run here: the first of ``postgres``/``rabbitmq`` that does
    not accept TCP connections on 127.0.0.1; ``None`` when all do."""
    ports = {"postgres": 5432, "rabbitmq": 5672}
    for name in servers:
        try:
            with socket.create_connection(("127.0.0.1", ports[name]), timeout=1.0):
                pass
        except OSError as exc:
            return f"{name} is not reachable on 127.0.0.1:{ports[name]} ({exc})"
    return None


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database named ``PREFIX_<random>``; its SQLAlchemy URL.
    Dropped (``WITH (FORCE)``) on leaving."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    # a connection per statement: one held idle for the whole run can be gone by the end
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_server_pids() -> list[int]:
    """The postmaster and PostgreSQL's own processes (WAL writer, checkpointer, ...), not
    the client backends: other sessions' queries on this shared machine stay out."""
    pids = []
    for pid in pids_named("postgres"):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"(" not in args:  # a client backend's title names its peer: "127.0.0.1(port)"
            pids.append(pid)
    return pids


class CpuMeter:
    """CPU seconds of named process groups between construction and :meth:`stop`, plus
    RabbitMQ (``beam.smp``) and PostgreSQL.

    ``postgres`` counts the server's own processes and ``backends()`` (the benchmark's
    connections, re-read at the end: a backend that started meanwhile counts from 0);
    ``postgres_all`` every ``postgres`` process on the machine, other sessions included."""

    def __init__(
        self, parts: dict[str, list[int]], backends: Callable[[], list[int]] = list
    ) -> None:
        self.parts = {**parts, "rabbitmq": pids_named("beam.smp")}
        self.backends = backends
        self.start = {k: cpu_by_pid(p) for k, p in self.parts.items()}
        self.pg_start = cpu_by_pid([*backends(), *postgres_server_pids()])
        self.all_start = sum(cpu_by_pid(pids_named("postgres")).values())

    def stop(self, jobs: int) -> dict[str, float]:
        """CPU milliseconds per job of each part and their ``total`` (without
        ``postgres_all``)."""
        per: dict[str, float] = {}
        for k, pids in self.parts.items():
            now = cpu_by_pid(pids)
            per[k] = sum(now[p] - self.start[k].get(p, 0.0) for p in now)
        pg_end = cpu_by_pid([*self.backends(), *postgres_server_pids()])
        per["postgres"] = sum(cpu - self.pg_start.get(pid, 0.0) for pid, cpu in pg_end.items())
        per = {k: v * 1000 / max(jobs, 1) for k, v in per.items()}
        per["total"] = sum(per.values())
        everything = sum(cpu_by_pid(pids_named("postgres")).values()) - self.all_start
        per["postgres_all"] = everything * 1000 / max(jobs, 1)
        return per
