"""A distributed pixelmill for the job benchmarks: a fresh PostgreSQL database, a private
RabbitMQ namespace, a storage folder, ``pixelmill gateway`` and ``pixelmill worker``
processes on 127.0.0.1 — all stopped by PID and dropped by :meth:`Platform.close`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

from .procs import CLI, Server, free_port, start_server, wait_http, wait_log
from .services import AMQP, fresh_database

#: the benchmark's own polling connections, kept out of pixelmill's PostgreSQL CPU
POLL_APP = "pm-bench-poll"


class Platform:
    """Set up by :meth:`open`: ``db_url``, an engine for polls, a write key
    (``key``/``key_id``) and ``env`` for every pixelmill process started."""

    def __init__(self, prefix: str = "pm_bench") -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
        self.namespace = f"{prefix.replace('_', '')}-{uuid.uuid4().hex[:8]}"
        self._stack = contextlib.ExitStack()
        self._prefix = prefix
        self.servers: list[Server] = []
        self.db_url = self.key = self.key_id = ""
        self.engine: Any = None
        self.env = {
            "PIXELMILL_DATA_DIR": str(self.tmp / "data"),
            "PIXELMILL_BROKER__URL": AMQP,
            "PIXELMILL_BROKER__NAMESPACE": self.namespace,
            "PIXELMILL_STORAGE__URL": f"file://{self.tmp / 'objects'}",
            "PIXELMILL_CACHE__URL": "none://",
            "PIXELMILL_JOBS__MAX_QUEUED_TASKS": "1000000",
            "PIXELMILL_OBSERVABILITY__LOG_LEVEL": "WARNING",
            # throughput is measured from one client: its request budget would cap it
            "PIXELMILL_RATELIMIT__ENABLED": "false",
        }

    def open(self) -> None:
        """Create and migrate the database and a write key."""
        import sqlalchemy as sa

        self.db_url = self._stack.enter_context(fresh_database(self._prefix))
        self.env["PIXELMILL_DATABASE__URL"] = self.db_url
        env = {**os.environ, **self.env}
        subprocess.run([*CLI, "db", "upgrade"], env=env, check=True, capture_output=True)
        # keys belong to a user since the user accounts came in: the key's owner first
        subprocess.run(
            [*CLI, "users", "add", "admin", "--admin"], env=env, check=True, capture_output=True
        )
        out = subprocess.run(
            [*CLI, "keys", "create", "bench", "--role", "write"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        created = json.loads(out.strip().splitlines()[-1])
        self.key, self.key_id = created["key"], created["id"]
        self.engine = sa.create_engine(self.db_url, connect_args={"application_name": POLL_APP})

    def spawn(self, name: str, args: list[str], **env: str) -> Server:
        """``pixelmill ARGS`` with the platform's settings (and ``env`` over them)."""
        log = self.tmp / f"{name}-{len(self.servers)}.log"
        server = start_server(name, [*CLI, *args], log, env={**self.env, **env})
        self.servers.append(server)
        return server

    def gateway(self, name: str = "gateway", **env: str) -> Server:
        """``pixelmill gateway`` (one server process) on a free port, once it answers."""
        port = free_port()
        server = self.spawn(name, ["gateway", "--port", str(port), "--server-workers", "1"], **env)
        server.port = port
        wait_http(server, "/healthz")
        return server

    def workers(self, count: int, threads: int) -> list[Server]:
        """``count`` ``pixelmill worker`` processes on the transform queue, once ready."""
        args = ["worker", "--queues", "transform", "--threads", str(threads)]
        started = [self.spawn("worker", args) for _ in range(count)]
        for server in started:
            wait_log(server, "worker ready")
        return started

    def backends(self) -> list[int]:
        """PostgreSQL backend pids of pixelmill's processes (the database's, less ours)."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name <> :poll"
                ),
                {"poll": POLL_APP},
            ).all()
        return [int(r[0]) for r in rows]

    def close(self) -> None:
        """Stop every process, drop the database and the namespace's queues."""
        for server in reversed(self.servers):
            server.stop(timeout=30)
        if self.engine is not None:
            self.engine.dispose()
        self._stack.close()
        if self.key:
            from pixelmill.backends.broker.rabbitmq import RabbitmqBroker

            RabbitmqBroker(AMQP, namespace=self.namespace).purge()
        shutil.rmtree(self.tmp, ignore_errors=True)
