"""Process signals of long-running commands (``pixelmill worker``): a graceful stop on
SIGTERM/SIGINT that always happens, and thread stacks on SIGUSR1 for a stuck process.

Why not ``signal.signal(SIGTERM, lambda *_: stop.set())`` with the main thread parked
in ``stop.wait()``: a Python signal handler only runs when the main thread executes
its next bytecode. Two ways that fails, both seen as a worker still running 20 s
after SIGTERM (``test_sigterm_lets_the_running_task_finish...``):

* the signal is taken by another thread (any thread may take a process signal), or
  arrives while the main thread is between its last check for signals and blocking
  on the event's lock: the main thread sleeps on, the handler never runs — a worker
  caught this way had not even logged "stopping";
* the handler runs while the main thread is entering (or leaving) ``stop.wait()``,
  holding the event's lock, which is not reentrant: ``stop.set()`` waits for itself.

Both are likelier on a loaded machine, where the main thread can still be on its way
into the wait when the first task has started and a SIGTERM comes. Here the signal's
number is written to a socket by the interpreter's C-level handler, in whatever
thread takes the signal (``signal.set_wakeup_fd``); a relay thread reading that
socket sets the event. Nothing depends on the main thread running, and no handler
takes a lock.
"""

from __future__ import annotations

import contextlib
import faulthandler
import signal
import socket
import sys
import threading
from collections.abc import Iterable
from types import FrameType

__all__ = ["dump_stacks_on", "stop_on_signals"]


def stop_on_signals(
    stop: threading.Event, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
) -> None:
    """Set ``stop`` when one of ``signals`` arrives. Call from the main thread (the only
    one that may install handlers). Takes the process's signal wake-up fd, so nothing
    else in the process may use it (an asyncio loop in the main thread would)."""
    wanted = {int(sig) for sig in signals}
    receiver, sender = socket.socketpair()
    sender.setblocking(False)

    def relay() -> None:
        while True:
            arrived = receiver.recv(64)  # blocks this thread only; a byte per signal
            if not arrived or wanted.intersection(arrived):
                break
        stop.set()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # the wake-up fd already carried the signal; this covers a replaced wake-up fd
        with contextlib.suppress(OSError):  # buffer full: wake-ups are pending already
            sender.send(bytes([signum]))

    threading.Thread(target=relay, name="pm-signal-relay", daemon=True).start()
    signal.set_wakeup_fd(sender.fileno(), warn_on_full_buffer=False)
    for sig in wanted:
        signal.signal(sig, on_signal)


def dump_stacks_on(sig: signal.Signals = signal.SIGUSR1) -> None:
    """Write every thread's stack to stderr when ``sig`` arrives, and carry on: what a
    process that does not stop is waiting for (``kill -USR1 PID``). :mod:`faulthandler`
    writes the dump from its C-level handler, so it comes even while the main thread
    is blocked."""
    faulthandler.register(sig, file=sys.stderr, all_threads=True, chain=False)
