"""Processes the benchmarks start and measure: free ports, process trees, CPU seconds and
memory read from ``/proc``, servers started on 127.0.0.1 and stopped by PID.

Every server started through :func:`start_server` is remembered until it is stopped, so
:func:`stopping_on_signals` can stop them all when the run is interrupted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelmill.runtime.cluster import free_port as cluster_free_port

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "benchmarks" / ".work"
VENV_BIN = Path(sys.executable).parent
CORES = os.cpu_count() or 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: ``pixelmill`` as this interpreter runs it (the worktree's source when on PYTHONPATH)
CLI = [sys.executable, "-c", "from pixelmill.runtime.cli import main; main()"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, outside the kernel's ephemeral range
    (:func:`pixelmill.runtime.cluster.free_port`)."""
    return cluster_free_port()


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc children lists)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def cpu_seconds(pids: int | Iterable[int]) -> float:
    """utime + stime (seconds) of ``pids`` summed; a process that has ended counts 0."""
    total = 0
    for p in [pids] if isinstance(pids, int) else pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds of each of ``pids`` that is still running."""
    return {p: cpu_seconds(p) for p in pids if Path(f"/proc/{p}").exists()}


def pids_named(name: str) -> list[int]:
    """Every process on the machine whose ``comm`` is ``name`` (e.g. ``postgres``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
    return found


def status_kb(pid: int, name: str) -> int:
    """A ``/proc/PID/status`` field in kB (``VmRSS``, ``VmHWM``); 0 once it has ended."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def pss_kb(pid: int) -> int:
    """Proportional set size: shared pages split between the processes mapping them."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class PssSampler:
    """The largest sum of PSS (kB) over a process tree, sampled every 0.1 s until stopped."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_kb = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak_kb = max(self.peak_kb, sum(pss_kb(p) for p in tree(self.root)))
            time.sleep(0.1)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak_kb


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / CLK_TCK, sum(fields) / CLK_TCK


@dataclass
class Server:
    """A process the benchmark started (with its children), its port and its log."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    pids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def refresh(self) -> list[int]:
        """Re-read the process tree (server workers start after the supervisor)."""
        self.pids = tree(self.proc.pid)
        return self.pids

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to every process of the tree, SIGKILL to what is left after ``timeout``."""
        pids = tree(self.proc.pid) if self.proc.poll() is None else self.pids
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.1)
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self in RUNNING:
            RUNNING.remove(self)


RUNNING: list[Server] = []


def start_server(
    name: str, cmd: list[str], log: Path, *, port: int = 0, env: dict[str, str] | None = None
) -> Server:
    """Start ``cmd`` (stdout and stderr to ``log``) with ``env`` over this environment."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    server = Server(name, port, proc, log, [proc.pid])
    RUNNING.append(server)
    return server


def wait_http(server: Server, path: str, *, timeout: float = 60, settle: float = 0) -> None:
    """Wait until ``path`` answers; ``settle`` s more for worker processes that start
    after the supervisor answers. Exits with the log's tail if the server dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(server.url + path, timeout=2):
            time.sleep(settle)
            server.refresh()
            return
        time.sleep(0.2)
    raise SystemExit(f"{server.name} did not answer on {path} within {timeout} s")


def wait_log(server: Server, text: str, *, timeout: float = 60) -> None:
    """Wait until ``text`` appears in the server's log (e.g. ``worker ready``)."""
    deadline = time.monotonic() + timeout
    while text.encode() not in server.log.read_bytes():
        if server.proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{server.name}: no {text!r}:\n{server.log.read_text()[-3000:]}")
        time.sleep(0.1)
    server.refresh()


def stop_all() -> None:
    """Stop every server still running, newest first."""
    for server in reversed(list(RUNNING)):
        server.stop()


@contextlib.contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Stop every started server on leaving, also on SIGINT/SIGTERM (exit 128 + signal)."""

    def handler(signum: int, _frame: Any) -> None:
        stop_all()
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        stop_all()
        for s, h in previous.items():
            signal.signal(s, h)
