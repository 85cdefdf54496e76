"""Bounded render work: a cap on renders computed at once, a bounded queue of waiting
ones, a time budget per render and abandonment of renders nobody waits for any more
(imgproxy's workers, requests queue and timeout).

Renders are CPU-bound (decoders release the GIL): more at once than cores only adds
cache thrash and context switches, so the rest wait their turn — at most ``max_queue``
of them, each at most ``queue_timeout_s``; beyond either the answer is ``503`` with
``Retry-After``. A waiting render whose client has gone is never started; a running one
is stopped when its client goes or it passes ``time_budget_s`` (libvips abandons the
computation at its next progress report).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pixelmill.errors import ClientClosed, Overloaded, RenderTimeout
from pixelmill.observability import metrics

#: how often a waiting render looks whether its client is still there, seconds
_POLL_S = 0.1


class RenderGate:
    def __init__(self, slots: int, max_queue: int, queue_timeout_s: float) -> None:
        self.slots = slots
        self.max_queue = max_queue
        self.queue_timeout_s = queue_timeout_s
        self._cond = threading.Condition()
        self._free = slots
        self._waiting = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    @contextmanager
    def slot(self, gone: Callable[[], bool] | None = None) -> Iterator[None]:
        """Hold a render slot for the block; ``gone()`` says the client has left."""
        waited = time.perf_counter()
        metrics.RENDER_GATE_WAITING.inc()
        try:
            self._acquire(gone)
        finally:
            metrics.RENDER_GATE_WAITING.dec()
        metrics.RENDER_GATE_WAIT_SECONDS.observe(time.perf_counter() - waited)
        metrics.RENDER_GATE_ACTIVE.inc()
        try:
            if gone is not None and gone():
                metrics.RENDERS_REFUSED.labels("client_gone").inc()
                raise ClientClosed("the client left before its render started")
            yield
        finally:
            metrics.RENDER_GATE_ACTIVE.dec()
            with self._cond:
                self._free += 1
                self._cond.notify()

    def _acquire(self, gone: Callable[[], bool] | None) -> None:
        with self._cond:
            if self._free > 0:
                self._free -= 1
                return
            if self._waiting >= self.max_queue:
                metrics.RENDERS_REFUSED.labels("queue_full").inc()
                raise Overloaded(
                    f"{self.slots} renders are running and {self._waiting} waiting; retry later",
                    retry_after=1,
                )
            self._waiting += 1
            deadline = time.monotonic() + self.queue_timeout_s
            try:
                while self._free == 0:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        metrics.RENDERS_REFUSED.labels("queue_timeout").inc()
                        raise Overloaded(
                            f"no render slot came free within {self.queue_timeout_s:g} s; "
                            "retry later",
                            retry_after=max(1, math.ceil(self.queue_timeout_s / 4)),
                        )
                    if gone is not None and gone():
                        metrics.RENDERS_REFUSED.labels("client_gone").inc()
                        raise ClientClosed("the client left while its render waited")
                    self._cond.wait(min(left, _POLL_S) if gone is not None else left)
                self._free -= 1
            finally:
                self._waiting -= 1


class RenderGuard:
    """Tells libvips to stop (``stop()``) when the client left or the budget is spent,
    and which of the two it was (:meth:`error`)."""

    def __init__(self, budget_s: float, gone: Callable[[], bool] | None = None) -> None:
        self.budget_s = budget_s
        self.deadline = time.monotonic() + budget_s if budget_s > 0 else math.inf
        self.gone = gone
        self.reason: str | None = None

    def __call__(self) -> bool:
        if self.reason is None:
            if self.gone is not None and self.gone():
                self.reason = "gone"
            elif time.monotonic() > self.deadline:
                self.reason = "budget"
        return self.reason is not None

    def error(self) -> Exception | None:
        """The error to raise after libvips stopped, or ``None`` when it was not us."""
        if self.reason == "gone":
            metrics.RENDERS_REFUSED.labels("client_gone").inc()
            return ClientClosed("the client left; its render was stopped")
        if self.reason == "budget":
            metrics.RENDERS_REFUSED.labels("time_budget").inc()
            return RenderTimeout(
                f"the render took longer than its budget of {self.budget_s:g} s and was "
                "stopped; ask for a smaller output or fewer operations",
                retry_after=1,
            )
        return None
