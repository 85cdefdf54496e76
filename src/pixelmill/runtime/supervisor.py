"""Keeps a local cluster's job workers running: a worker process that dies (a crash, an
OOM kill, ``kill -9``) is started again, after a backoff that doubles while it keeps
dying soon after start and resets once it stayed up ``stable_after_s``.

Used by ``pixelmill up --workers N`` in its lean server supervisor
(:func:`pixelmill.runtime.asgi.serve`), so this module imports only the standard library.
Children are watched by PID (``waitpid`` on each, never ``-1``: uvicorn's server
processes are children of the same process and are uvicorn's to reap).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("pixelmill.supervisor")


def worker_command(threads: int | None = None) -> list[str]:
    """The argv of one ``pixelmill worker`` process."""
    command = [sys.executable, "-c", "from pixelmill.runtime.cli import main; main()", "worker"]
    return [*command, "--threads", str(threads)] if threads else command


def die_with_parent() -> None:
    """``preexec_fn``: on Linux the child gets SIGTERM when its parent dies, even by
    ``kill -9``, so no orphaned worker outlives its cluster."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def backoff_s(crashes: int, *, min_s: float, max_s: float) -> float:
    """Wait before the restart that follows ``crashes`` quick crashes in a row (1, 2, ...):
    ``min_s`` doubling, at most ``max_s``."""
    return float(min(max_s, min_s * 2 ** max(0, crashes - 1)))


@dataclass
class _Slot:
    pid: int | None
    started_at: float = field(default_factory=time.monotonic)
    crashes: int = 0
    start_at: float = 0.0  # when a dead slot may start again
    retiring: bool = False  # told to drain: removed once it exited, never restarted


def _exited(pid: int) -> int | None:
    """The exit status of child ``pid`` once it ended (reaping it), else ``None``."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -1  # not our child any more (reaped elsewhere): gone all the same
    return status if done else None


class WorkerSupervisor:
    """Restarts dead processes among ``pids`` (children of this process) with
    ``command``. :meth:`start` watches in a thread; :meth:`stop` ends it and the workers."""

    def __init__(
        self,
        command: list[str],
        pids: list[int],
        *,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        stable_after_s: float = 60.0,
        poll_s: float = 0.2,
        on_restart: Callable[[int, int], None] | None = None,
        own_session: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.command = command
        self.env = env
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.stable_after_s = stable_after_s
        self.poll_s = poll_s
        self.on_restart = on_restart
        # a session of its own: a terminal's Ctrl+C reaches only this process, which then
        # stops the workers in its own order
        self.own_session = own_session
        self.restarts = 0
        self._slots = [_Slot(pid) for pid in pids]
        self._procs: dict[int, subprocess.Popen[bytes]] = {}  # held: no reaping on GC
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="pm-supervisor", daemon=True)

    def pids(self) -> list[int]:
        """PIDs of the workers running now (draining ones included)."""
        with self._lock:
            return [s.pid for s in self._slots if s.pid is not None]

    def size(self) -> tuple[int, int]:
        """``(workers asked for, workers running)``: draining ones count in neither."""
        with self._lock:
            kept = [s for s in self._slots if not s.retiring]
            return len(kept), sum(1 for s in kept if s.pid is not None)

    def resize(self, count: int) -> None:
        """Keep ``count`` workers: start new ones (at once, by the watch loop) or drain
        the newest ones (SIGTERM: a worker takes no new task, finishes what it holds,
        exits; it is never killed here). Slots not running yet go first."""
        with self._lock:
            kept = [s for s in self._slots if not s.retiring]
            for _ in range(count - len(kept)):
                self._slots.append(_Slot(None, start_at=0.0))
            surplus = len(kept) - count
            for slot in sorted(kept, key=lambda s: (s.pid is not None, -s.started_at))[
                : max(0, surplus)
            ]:
                slot.retiring = True
                if slot.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(slot.pid, signal.SIGTERM)
            self._slots = [s for s in self._slots if not (s.retiring and s.pid is None)]

    def start(self) -> WorkerSupervisor:
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            with self._lock:
                for index, slot in enumerate(self._slots):
                    self._check(index, slot)
                self._slots = [s for s in self._slots if not (s.retiring and s.pid is None)]

    def _check(self, index: int, slot: _Slot) -> None:
        now = time.monotonic()
        if slot.pid is not None:
            status = _exited(slot.pid)
            if status is None:
                return
            if slot.retiring:
                log.info("job worker %d (pid %d) drained and exited", index, slot.pid)
                self._procs.pop(slot.pid, None)
                slot.pid = None
                return
            if now - slot.started_at >= self.stable_after_s:
                slot.crashes = 0
            slot.crashes += 1
            wait = backoff_s(slot.crashes, min_s=self.min_backoff_s, max_s=self.max_backoff_s)
            log.warning(
                "job worker %d (pid %d) exited with status %d; restarting in %.1f s",
                index,
                slot.pid,
                status,
                wait,
            )
            self._procs.pop(slot.pid, None)
            slot.pid, slot.start_at = None, now + wait
            return
        if now < slot.start_at or self._stop.is_set():
            return
        old = self.restarts
        proc = subprocess.Popen(
            self.command,
            preexec_fn=die_with_parent,
            start_new_session=self.own_session,
            env=self.env,
        )
        self._procs[proc.pid] = proc
        slot.pid, slot.started_at = proc.pid, now
        self.restarts = old + 1
        if self.on_restart is not None:
            self.on_restart(index, proc.pid)

    def stop_restarting(self) -> None:
        """Restart nothing from now on (:meth:`stop` then stops the workers)."""
        self._stop.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop restarting, then SIGTERM the workers (SIGKILL after ``timeout_s``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        stop_children(self.pids(), timeout_s)


def stop_children(pids: list[int], timeout_s: float = 30.0) -> None:
    """SIGTERM child processes (graceful), SIGKILL any still running after ``timeout_s``."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    running = set(pids)
    while running and time.monotonic() < deadline:
        for pid in list(running):
            if _exited(pid) is not None:
                running.discard(pid)
        if running:
            time.sleep(0.1)
    for pid in running:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def count_restart(_index: int, _pid: int) -> None:
    """``on_restart`` for a real cluster: ``pixelmill_worker_restarts_total`` (written to
    the multiprocess metrics folder the server processes aggregate)."""
    from pixelmill.observability import metrics

    metrics.WORKER_RESTARTS.inc()
