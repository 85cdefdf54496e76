"""In-process broker for embedded mode: priority lanes, retries with exponential
backoff, dead-lettering, graceful stop — in memory.

Not durable on its own: a killed process loses what is in memory. Embedded mode stays
crash-safe because the metadata DB is the durable record and the job service
re-publishes every unfinished task when it starts (see ``JobService.recover``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pixelmill.backends.broker.base import (
    HIGH_PRIORITY,
    QUEUES,
    DeadLetterHandler,
    Delivery,
    Handler,
    RetryPolicy,
    TaskMessage,
)

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    queue: str
    message: TaskMessage
    lane: int  # 0 high, 1 normal
    max_retries: int | None
    retries: int = 0
    dead_reason: str | None = None  # set once dead-lettered but not yet settled


class InProcessBroker:
    """A broker living in this process's memory (see the module docstring)."""

    durable = False

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy()
        self._cond = threading.Condition()
        self._ready: dict[str, list[tuple[int, int, _Entry]]] = {q: [] for q in QUEUES}
        self._delayed: list[tuple[float, int, _Entry]] = []
        self._seq = itertools.count()
        self._consumers: list[_InProcessConsumer] = []

    # -- the Broker protocol ------------------------------------------------------------
    def publish(
        self,
        queue: str,
        message: TaskMessage,
        *,
        priority: int = 0,
        max_retries: int | None = None,
    ) -> None:
        if queue not in self._ready:
            raise ValueError(f"unknown queue {queue!r}; one of {', '.join(QUEUES)}")
        lane = 0 if priority >= HIGH_PRIORITY else 1
        with self._cond:
            self._push(_Entry(queue, message, lane, max_retries))
            self._cond.notify()

    def serve(
        self,
        queues: Sequence[str],
        handler: Handler,
        *,
        on_dead_letter: DeadLetterHandler,
        threads: int = 4,
    ) -> _InProcessConsumer:
        unknown = set(queues) - set(self._ready)
        if unknown:
            raise ValueError(f"unknown queue(s) {sorted(unknown)}")
        consumer = _InProcessConsumer(self, list(queues), handler, on_dead_letter, threads)
        self._consumers.append(consumer)
        consumer.start()
        return consumer

    def depth(self, queue: str) -> int:
        with self._cond:
            return len(self._ready[queue]) + sum(1 for _, _, e in self._delayed if e.queue == queue)

    def queue_stats(self) -> list[tuple[str, str, int, int]]:
        found = []
        with self._cond:
            for queue, heap in self._ready.items():
                threads = sum(len(c._threads) for c in self._consumers if queue in c.queues)
                for lane, name in ((1, "normal"), (0, "high")):
                    ready = sum(1 for entry in heap if entry[2].lane == lane)
                    found.append((queue, name, ready, threads))
        return found

    def ping(self) -> None:
        return None

    def close(self) -> None:
        for consumer in list(self._consumers):
            consumer.stop(timeout_s=5.0)

    # -- internals (callers hold self._cond) --------------------------------------------
    def _push(self, entry: _Entry) -> None:
        heapq.heappush(self._ready[entry.queue], (entry.lane, next(self._seq), entry))

    def _delay(self, entry: _Entry, seconds: float) -> None:
        heapq.heappush(self._delayed, (time.monotonic() + seconds, next(self._seq), entry))

    def _take(self, queues: Sequence[str]) -> tuple[_Entry | None, float]:
        """The best ready entry of ``queues``, or ``None`` and how long to wait."""
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, entry = heapq.heappop(self._delayed)
            self._push(entry)
        best: tuple[int, int, _Entry] | None = None
        for queue in queues:
            heap = self._ready[queue]
            if heap and (best is None or heap[0][:2] < best[:2]):
                best = heap[0]
        if best is not None:
            heapq.heappop(self._ready[best[2].queue])
            return best[2], 0.0
        wait = self._delayed[0][0] - now if self._delayed else 0.5
        return None, max(0.001, min(wait, 0.5))


class _InProcessConsumer:
    def __init__(
        self,
        broker: InProcessBroker,
        queues: list[str],
        handler: Handler,
        on_dead_letter: DeadLetterHandler,
        threads: int,
    ) -> None:
        self.broker = broker
        self.queues = queues
        self.handler = handler
        self.on_dead_letter = on_dead_letter
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"pm-inproc-worker-{i}", daemon=True)
            for i in range(max(1, threads))
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def alive(self) -> bool:
        return not self._stopping.is_set() and all(t.is_alive() for t in self._threads)

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stopping.set()
        with self.broker._cond:
            self.broker._cond.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self in self.broker._consumers:
            self.broker._consumers.remove(self)

    def _loop(self) -> None:
        cond = self.broker._cond
        while not self._stopping.is_set():
            with cond:
                entry, wait = self.broker._take(self.queues)
                if entry is None:
                    cond.wait(wait)
                    continue
            self._run(entry)

    def _run(self, entry: _Entry) -> None:
        policy = self.broker.policy
        if entry.dead_reason is not None:
            self._dead_letter(entry, entry.dead_reason)
            return
        limit = policy.max_retries if entry.max_retries is None else entry.max_retries
        delivery = Delivery(entry.message, entry.queue, entry.retries, False, limit)
        try:
            self.handler(delivery)
        except Exception as exc:
            backoff = policy.retry_in_s(entry.retries, entry.max_retries)
            if backoff is None:
                reason = f"gave up after {entry.retries + 1} attempts: {type(exc).__name__}: {exc}"
                self._dead_letter(entry, reason)
                return
            log.info("task %s retry in %.2fs: %s", entry.message, backoff, exc)
            entry.retries += 1
            with self.broker._cond:
                self.broker._delay(entry, backoff)

    def _dead_letter(self, entry: _Entry, reason: str) -> None:
        try:
            self.on_dead_letter(entry.message, reason)
        except Exception as exc:
            # the dead letter itself stays until it is settled (e.g. the DB is back)
            log.warning("dead-letter handling of %s failed, retrying: %s", entry.message, exc)
            entry.dead_reason = reason
            with self.broker._cond:
                self.broker._delay(entry, self.broker.policy.min_backoff_s)
