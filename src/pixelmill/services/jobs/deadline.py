"""Per-step time limits for task threads.

One watchdog thread per process sleeps until the nearest armed deadline (or, with none
armed, until a limit is armed) and raises :class:`StepTimeLimitExceeded` inside a thread
that outlived its step (the mechanism
Dramatiq's TimeLimit uses: ``PyThreadState_SetAsyncExc``). The exception lands at the
next Python bytecode, so a single long C call (libvips, torch) finishes first.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pixelmill.services.jobs.context import StepTimeLimitExceeded


class Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: wakes the thread when a limit is armed (it may be due before the one it waits for)
        self._armed_changed = threading.Condition(self._lock)
        self._armed: dict[int, list[tuple[float, str, float]]] = {}
        self._fired: dict[int, tuple[str, float]] = {}
        self._thread: threading.Thread | None = None

    @contextmanager
    def limit(self, step: str, seconds: float | None) -> Iterator[None]:
        """Run the block with a deadline of ``seconds`` (``None``/0: no limit). Nested
        limits stack; the innermost that expires first fires."""
        if not seconds or seconds <= 0:
            yield
            return
        tid = threading.get_ident()
        entry = (time.monotonic() + seconds, step, seconds)
        with self._lock:
            self._armed.setdefault(tid, []).append(entry)
            self._ensure_thread()
            self._armed_changed.notify()
        delivered = False
        try:
            yield
        except StepTimeLimitExceeded:
            delivered = True
            fired = self._fired.get(tid, (step, seconds))
            raise StepTimeLimitExceeded(*fired) from None
        finally:
            with self._lock:
                stack = self._armed.get(tid, [])
                if entry in stack:
                    stack.remove(entry)
                if not stack:
                    self._armed.pop(tid, None)
                if tid in self._fired and not delivered and not stack:
                    # fired after the block ended: withdraw the pending exception
                    self._fired.pop(tid, None)
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)
                elif delivered and not stack:
                    self._fired.pop(tid, None)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="pm-watchdog", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        with self._lock:
            while True:
                due = self._fire_expired(time.monotonic())
                # an ended block's entry needs no wake-up: it is simply not due any more
                self._armed_changed.wait(None if due is None else max(due - time.monotonic(), 0))

    def _fire_expired(self, now: float) -> float | None:
        """Interrupt each thread past a deadline (with the lock held); the nearest
        deadline still ahead, if any."""
        due: float | None = None
        for tid, stack in list(self._armed.items()):
            if tid in self._fired:
                continue
            expired = [e for e in stack if e[0] <= now]
            if expired:
                _deadline, step, seconds = min(expired)
                self._fired[tid] = (step, seconds)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(tid), ctypes.py_object(StepTimeLimitExceeded)
                )
            else:
                nearest = min(e[0] for e in stack)
                due = nearest if due is None else min(due, nearest)
        return due


#: the process's watchdog
WATCHDOG = Watchdog()
