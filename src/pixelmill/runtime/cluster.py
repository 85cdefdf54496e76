"""A distributed deployment on this machine (``pixelmill cluster up``): HAProxy in front
of N gateway processes, M job worker processes, all on loopback, on ports chosen free.

Each gateway is one uvicorn process (:func:`pixelmill.runtime.asgi.run_server`) over the
settings the CLI exported (``PIXELMILL_CONFIG``); each worker is ``pixelmill worker``.
Every process is a child of the ``cluster up`` process, kept running by a
:class:`~pixelmill.runtime.supervisor.WorkerSupervisor` of its own (a gateway killed
with ``kill -9`` comes back on its port; HAProxy's health check on ``/readyz`` routes
around it meanwhile), and gets SIGTERM if ``cluster up`` dies. HAProxy runs in the
foreground (``-db``), its log (one ``httplog`` line per request) in ``haproxy.log``.

The state — PIDs, ports, the log — is ``DATA_DIR/cluster/cluster.json``, which
``pixelmill cluster down`` reads. Standard library only, besides :mod:`.lb`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelmill.runtime.lb import local_config
from pixelmill.runtime.supervisor import (
    WorkerSupervisor,
    die_with_parent,
    stop_children,
    worker_command,
)

__all__ = ["STATE_FILE", "ClusterPlan", "LocalCluster", "free_port", "read_state"]

#: where ``cluster up`` writes its state, under ``DATA_DIR/cluster/``
STATE_FILE = "cluster.json"


def free_port(host: str = "127.0.0.1", *, avoid: Collection[int] = ()) -> int:
    """A TCP port nothing listens on now, below the kernel's ephemeral range (not in
    ``avoid``). A port the kernel picks (a bind to port 0) comes from the range it also
    hands outgoing connections as their local port: between the pick and the child's
    bind, any connection of any process may take it, and a restarted child found it
    taken for good ("address already in use"). Random, so two pickers rarely meet."""
    low = _ephemeral_low()
    pick = random.SystemRandom()
    for _ in range(200):
        port = pick.randrange(max(1024, low - 16384), low)
        if port in avoid:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # every try taken: the kernel's pick after all
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux's default: 32768)."""
    try:
        first = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0]
        return max(2048, int(first))
    except (OSError, ValueError, IndexError):
        return 32768


def gateway_command(host: str, port: int) -> list[str]:
    """The argv of one gateway process: uvicorn, one process, on ``host:port``. Only the
    local HAProxy (connecting from this machine) is believed about the client's address
    (its ``X-Forwarded-For``, set to the peer it saw)."""
    proxies = ",".join(dict.fromkeys(["127.0.0.1", host]))
    statement = (
        "from pixelmill.runtime.asgi import run_server; "
        f"run_server({host!r}, {port}, 1, {proxies!r})"
    )
    return [sys.executable, "-c", statement]


def ready(url: str, timeout_s: float = 1.0) -> bool:
    """Whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class ClusterPlan:
    """What to start: ``gateways`` and ``workers`` processes behind HAProxy on ``port``
    (0: a free one), its config made from ``compose_config`` (see :mod:`.lb`)."""

    data_dir: Path
    compose_config: str
    gateways: int = 2
    workers: int = 2
    port: int = 8000
    host: str = "127.0.0.1"
    haproxy: str = "haproxy"
    worker_threads: int | None = None
    start_timeout_s: float = 90.0


@dataclass
class _Process:
    name: str
    port: int | None
    supervisor: WorkerSupervisor


@dataclass
class LocalCluster:
    """Starts (:meth:`start`) and stops (:meth:`stop`) the processes of a plan."""

    plan: ClusterPlan
    processes: list[_Process] = field(default_factory=list)
    _popens: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _written: dict[str, Any] = field(default_factory=dict)
    haproxy: subprocess.Popen[bytes] | None = None
    port: int = 0
    stats_port: int = 0

    @property
    def folder(self) -> Path:
        return self.plan.data_dir / "cluster"

    @property
    def url(self) -> str:
        return f"http://{self.plan.host}:{self.port}"

    def start(self) -> dict[str, Any]:
        """Start everything, wait until HAProxy serves ``/readyz``; return the state."""
        plan = self.plan
        self.folder.mkdir(parents=True, exist_ok=True)
        for i in range(1, plan.gateways + 1):
            port = free_port(plan.host)
            self._spawn(f"gw{i}", port, gateway_command(plan.host, port))
        for i in range(1, plan.workers + 1):
            health = free_port(plan.host)
            command = [*worker_command(plan.worker_threads), "--health-port", str(health)]
            self._spawn(f"worker{i}", health, command)
        self._wait("the gateways", lambda: all(ready(u) for u in self._gateway_urls()))
        self.port = plan.port or free_port(plan.host)
        self.stats_port = free_port(plan.host)
        self._start_haproxy()
        self._wait("HAProxy", lambda: ready(self.url + "/readyz"))
        self.write_state()
        return self.state()

    def _spawn(self, name: str, port: int | None, command: list[str]) -> None:
        # sessions of their own: Ctrl+C in the terminal reaches `cluster up` only, which
        # stops HAProxy first (else it would die at once, cutting requests off)
        proc = subprocess.Popen(command, preexec_fn=die_with_parent, start_new_session=True)
        supervisor = WorkerSupervisor(command, [proc.pid], own_session=True)
        self._popens.append(proc)  # held: never reaped behind the supervisor's back
        self.processes.append(_Process(name, port, supervisor.start()))

    def _gateway_urls(self) -> list[str]:
        return [
            f"http://{self.plan.host}:{p.port}/readyz"
            for p in self.processes
            if p.name.startswith("gw")
        ]

    def _start_haproxy(self) -> None:
        gateway_ports = [p.port for p in self.processes if p.name.startswith("gw") and p.port]
        config = local_config(
            self.plan.compose_config,
            port=self.port,
            gateway_ports=gateway_ports,
            stats_port=self.stats_port,
            host=self.plan.host,
        )
        path = self.folder / "haproxy.cfg"
        path.write_text(config)
        log = (self.folder / "haproxy.log").open("ab")
        self.haproxy = subprocess.Popen(
            [self.plan.haproxy, "-db", "-f", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        log.close()

    def _wait(self, what: str, condition: Any) -> None:
        deadline = time.monotonic() + self.plan.start_timeout_s
        while not condition():
            if self.haproxy is not None and self.haproxy.poll() is not None:
                raise RuntimeError(f"HAProxy exited: see {self.folder / 'haproxy.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not become ready in {self.plan.start_timeout_s} s")
            time.sleep(0.2)

    def check(self) -> bool:
        """Whether HAProxy still runs (the processes behind it are restarted when they
        die); rewrites the state file when a process was restarted (a new PID)."""
        if self.state() != self._written:
            self.write_state()
        return self.haproxy is not None and self.haproxy.poll() is None

    def state(self) -> dict[str, Any]:
        def entry(p: _Process) -> dict[str, Any]:
            pids = p.supervisor.pids()
            return {"name": p.name, "port": p.port, "pid": pids[0] if pids else None}

        return {
            "pid": os.getpid(),
            "url": self.url,
            "stats_url": f"http://{self.plan.host}:{self.stats_port}/stats",
            "haproxy": {
                "pid": self.haproxy.pid if self.haproxy else None,
                "config": str(self.folder / "haproxy.cfg"),
                "log": str(self.folder / "haproxy.log"),
            },
            "gateways": [entry(p) for p in self.processes if p.name.startswith("gw")],
            "workers": [entry(p) for p in self.processes if p.name.startswith("worker")],
        }

    def write_state(self) -> None:
        path = self.folder / STATE_FILE
        temp = path.with_suffix(".tmp")
        self._written = self.state()
        temp.write_text(json.dumps(self._written, indent=1))
        temp.replace(path)  # readers never see half a file

    def stop(self, timeout_s: float = 30.0) -> None:
        """Graceful: HAProxy stops taking connections and finishes the requests it has
        (SIGUSR1), then gateways and workers get SIGTERM (workers finish their tasks),
        SIGKILL for any still running after ``timeout_s``."""
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.send_signal(signal.SIGUSR1)
            try:
                self.haproxy.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
                self.haproxy.wait()
        for process in self.processes:
            process.supervisor.stop_restarting()
        pids = [pid for process in self.processes for pid in process.supervisor.pids()]
        stop_children(pids, timeout_s)  # side by side: every SIGTERM first
        for process in self.processes:
            process.supervisor.stop(timeout_s)  # ends its thread (the processes are gone)
        with contextlib.suppress(FileNotFoundError):
            (self.folder / STATE_FILE).unlink()


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The state a running ``cluster up`` on ``data_dir`` wrote, else ``None``."""
    try:
        state: dict[str, Any] = json.loads((data_dir / "cluster" / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state
