"""The systems under load, all on 127.0.0.1 and stopped by PID:

* **embedded** — ``pixelmill up`` (the monolith): SQLite, local objects, per-process
  memory cache, jobs run inside the gateway's processes;
* **distributed** — ``pixelmill gateway`` x G behind HAProxy (roundrobin, health checks)
  + ``pixelmill worker`` x W on RabbitMQ, PostgreSQL and Redis (the cache): the
  benchmarks' :class:`~benchmarks._harness.platform.Platform` plus a load balancer;
* **thumbor** — the render peer (its own virtualenv, see ``benchmarks/render_servers.py``).

Each exposes ``url``, an API ``key``, ``db_url`` (to count jobs) and its process ids.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._harness.platform import Platform
from benchmarks._harness.procs import (
    CLI,
    CORES,
    Server,
    free_port,
    start_server,
    tree,
    wait_http,
)

REDIS = "redis://127.0.0.1:6379/0"
THUMBOR = Path(__file__).resolve().parents[1] / ".work" / "thumbor-venv" / "bin" / "thumbor"


@dataclass
class System:
    """One system under test, once it answers."""

    name: str
    url: str
    key: str
    db_url: str
    gateways: list[Server] = field(default_factory=list)
    workers: list[Server] = field(default_factory=list)
    extra: list[Server] = field(default_factory=list)
    platform: Platform | None = None

    def pids(self) -> list[int]:
        """Every process of the system we started (the shared servers' are not ours)."""
        return [p for s in self.gateways + self.workers for p in tree(s.proc.pid)]

    def close(self) -> None:
        for server in reversed(self.extra + self.workers + self.gateways):
            server.stop(timeout=15)
        if self.platform is not None:
            if self.name.endswith("no-broker"):
                self.platform.key = ""  # no RabbitMQ namespace to purge
            self.platform.close()


def embedded(run: Path, processes: int = CORES) -> System:
    """``pixelmill up --server-workers N`` on its own data dir (the monolith)."""
    data = run / f"embedded-{processes}"
    port = free_port()
    args = ["up", "--data-dir", str(data), "--port", str(port)]
    args += ["--server-workers", str(processes)]
    server = start_server("embedded", [*CLI, *args], run / f"embedded-{processes}.log", port=port)
    server.port = port
    wait_http(server, "/healthz", timeout=120, settle=1.5)
    found = re.search(r"Created the admin API key in (\S+) ", server.log.read_text())
    if found is None:
        server.stop()
        raise SystemExit(f"no admin key in {server.log}")
    key = Path(found.group(1)).read_text().strip()
    return System("embedded", server.url, key, f"sqlite:///{data / 'pixelmill.db'}", [server])


def _haproxy(run: Path, gateways: list[Server]) -> Server:
    port = free_port()
    backends = "\n".join(
        f"  server g{i} 127.0.0.1:{g.port} check inter 500ms fall 2 rise 2"
        for i, g in enumerate(gateways)
    )
    conf = run / f"haproxy-{port}.cfg"
    conf.write_text(
        "global\n  maxconn 4096\n"
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n"
        "  timeout server 60s\n  retries 2\n  option redispatch\n"
        f"frontend fe\n  bind 127.0.0.1:{port}\n  default_backend gw\n"
        "backend gw\n  balance roundrobin\n  option httpchk GET /healthz\n"
        f"{backends}\n"
    )
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    server = start_server(
        "haproxy", [binary, "-db", "-f", str(conf)], run / "haproxy.log", port=port
    )
    wait_http(server, "/healthz", timeout=30)
    return server


def distributed(
    run: Path,
    gateways: int = 1,
    workers: int = 1,
    threads: int = 4,
    queues: str = "transform",
    *,
    broker: bool = True,
) -> System:
    """G gateways behind HAProxy + W workers on the machine's RabbitMQ/PostgreSQL/Redis;
    ``broker=False``: no RabbitMQ and no workers — the gateways share PostgreSQL and Redis
    and run jobs in their own processes (in-memory broker)."""
    platform = Platform("pm_study")
    try:
        platform.open()
        platform.env["PIXELMILL_CACHE__URL"] = REDIS
        if not broker:
            platform.env["PIXELMILL_BROKER__URL"] = "memory://"
            workers = 0
        gws = [platform.gateway(f"gateway-{i}") for i in range(gateways)]
        wks = add_workers(platform, workers, threads, queues)
        lb = _haproxy(run, gws)
    except BaseException:
        platform.close()
        raise
    name = "distributed" if broker else "distributed-no-broker"
    system = System(name, lb.url, platform.key, platform.db_url, gws, wks, [lb])
    system.platform = platform
    return system


def add_workers(platform: Platform, count: int, threads: int, queues: str) -> list[Server]:
    """``count`` more ``pixelmill worker`` processes on ``queues``, once ready."""
    from benchmarks._harness.procs import wait_log

    args = ["worker", "--queues", queues, "--threads", str(threads)]
    started = [platform.spawn("worker", args) for _ in range(count)]
    for server in started:
        wait_log(server, "worker ready", timeout=120)
    return started


def thumbor(run: Path, images: Path, processes: int = CORES) -> Server | None:
    """thumbor (file loader, no result storage), installed into its own virtualenv the
    first time (``benchmarks/render_servers.py``); ``None`` when that cannot be done."""
    if not THUMBOR.exists():
        import subprocess

        from benchmarks.study import benchmarks_on_path

        benchmarks_on_path()
        from render_servers import ensure_thumbor

        try:
            ensure_thumbor()
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"thumbor could not be installed ({exc}): the render peer is left out")
            return None
    port = free_port()
    conf = run / "thumbor.conf"
    conf.write_text(
        f"LOADER = 'thumbor.loaders.file_loader'\nFILE_LOADER_ROOT_PATH = {str(images)!r}\n"
        "STORAGE = 'thumbor.storages.no_storage'\nRESULT_STORAGE = None\nQUALITY = 82\n"
        "PROGRESSIVE_JPEG = False\nALLOW_UNSAFE_URL = True\n"
    )
    cmd = [str(THUMBOR), "--ip", "127.0.0.1", "--port", str(port), "--processes", str(processes)]
    server = start_server(
        "thumbor", [*cmd, "--conf", str(conf), "-l", "error"], run / "thumbor.log"
    )
    server.port = port
    wait_http(server, "/healthcheck", timeout=60, settle=1.0)
    return server


def jobs_state(db_url: str, since: str) -> dict[str, Any]:
    """Jobs created after ``since`` (a job id): counts by state, first created, last finished."""
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT state, count(*) FROM jobs WHERE id > :s GROUP BY state"),
                {"s": since},
            ).all()
            span = conn.execute(
                sa.text("SELECT min(created_at), max(finished_at) FROM jobs WHERE id > :s"),
                {"s": since},
            ).one()
    finally:
        engine.dispose()
    return {"states": {str(r[0]): int(r[1]) for r in rows}, "first": span[0], "last": span[1]}


def job_marker() -> str:
    """A job id below every job submitted from now on."""
    from pixelmill.backends.metadata.jobs import new_job_id

    return new_job_id()[:12] + "0" * 20


def kill9(server: Server) -> int:
    """SIGKILL the server's main process (not its tree: the supervisor's children die with
    it by PDEATHSIG where the system arranges that). Returns the PID killed."""
    import os
    import signal

    pid = server.proc.pid
    os.kill(pid, signal.SIGKILL)
    server.proc.wait(timeout=10)
    return pid


def broker_down() -> str | None:
    """Why the distributed system cannot run here now (RabbitMQ refusing or not finishing
    the AMQP handshake within 8 s, PostgreSQL unreachable); ``None`` when both answer."""
    import pika
    from benchmarks._harness.services import AMQP, missing

    reason = missing("postgres", "rabbitmq")
    if reason:
        return reason
    params = pika.URLParameters(AMQP + "?connection_attempts=1&socket_timeout=8")
    try:
        pika.BlockingConnection(params).close()
    except Exception as exc:  # any failure means: no broker for this run
        return (
            f"RabbitMQ on 127.0.0.1:5672 did not complete the AMQP handshake ({type(exc).__name__})"
        )
    return None
