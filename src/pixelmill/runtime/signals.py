"""Process signals of long-running commands (``pixelmill worker``): a graceful stop on
SIGTERM/SIGINT that cannot deadlock, and thread stacks on SIGUSR1 for a stuck process.

Why not ``signal.signal(SIGTERM, lambda *_: stop.set())``: a Python signal handler runs
in the main thread between two bytecodes, and that thread spends its life in
``stop.wait()``. While it enters (or leaves) that wait it holds the event's internal
lock, which is not reentrant; a handler that runs right then and calls ``stop.set()``
waits for that lock — held by the very thread it interrupted — forever: the worker
never stops and ignores every later SIGTERM too. Rare, and likelier on a loaded
machine, where the main thread can still be in that stretch when the first task has
started and a SIGTERM comes. Here the handler only writes a byte to a socket (no
lock), and a small thread that reads it sets the event from outside the main thread.
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
    one that may install signal handlers), before waiting on ``stop`` there."""
    receiver, sender = socket.socketpair()
    sender.setblocking(False)

    def relay() -> None:
        receiver.recv(1)  # blocks this thread only, until the first signal
        stop.set()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):  # buffer full: wake-ups are pending already
            sender.send(b"\0")

    threading.Thread(target=relay, name="pm-signal-relay", daemon=True).start()
    for sig in signals:
        signal.signal(sig, on_signal)


def dump_stacks_on(sig: signal.Signals = signal.SIGUSR1) -> None:
    """Write every thread's stack to stderr when ``sig`` arrives, and carry on: what a
    process that does not stop is waiting for (``kill -USR1 PID``). The dump is made in
    C by :mod:`faulthandler`, so it works even when the interpreter is deadlocked."""
    faulthandler.register(sig, file=sys.stderr, all_threads=True, chain=False)
