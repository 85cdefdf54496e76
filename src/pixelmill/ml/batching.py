"""Dynamic batching: concurrent callers' inputs of the same shape are stacked into one
runtime call (at most ``max_batch``, waiting at most ``max_wait`` seconds for company).

At most one runtime call runs at a time, so concurrent requests never oversubscribe the
cores with parallel sessions. A worker thread runs the batches; it waits for more inputs
only while other callers are known to be on their way (``pending`` > what it already
holds), so a lone request is not delayed by ``max_wait``. A lone input that finds the
runtime idle and nobody queued or on the way runs in its caller's thread instead: a batch
of one either way, without the two thread hand-offs (to the worker and back) that cost a
small prediction a measurable share of its time on a loaded machine
(docs/benchmarks.md, "ML serving over HTTP").
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np
from numpy.typing import NDArray

Runner = Callable[[NDArray[np.float32]], NDArray[np.float32]]

#: Total pixels of one batch. On CPU a batch's activations must stay in the caches: at
#: 256 x 256 the shipped U-Net ran as fast batched by 2-3 as one at a time and slower by
#: 4-8 (57 vs 62 requests/s at concurrency 8), so batches hold at most three 256 x 256
#: inputs; larger inputs run alone (docs/benchmarks.md, "ML").
BATCH_PIXELS = 3 * 256 * 256


def batch_limit(shape: tuple[int, ...], max_batch: int, max_pixels: int) -> int:
    """How many inputs of ``shape`` (…, H, W) one batch may hold: at most ``max_batch``
    and ``max_pixels`` pixels in all, at least one."""
    pixels = max(int(np.prod(shape[-2:])), 1)
    return max(1, min(max_batch, max_pixels // pixels))


class DynamicBatcher:
    """Batch (C, H, W) float32 inputs for ``runner`` (N, C, H, W) → (N, ...)."""

    def __init__(
        self,
        runner: Runner,
        *,
        max_batch: int = 8,
        max_wait: float = 0.005,
        max_batch_pixels: int = BATCH_PIXELS,
    ) -> None:
        self.runner = runner
        self.max_batch = max(1, max_batch)
        #: three 256 x 256 inputs per batch, two up to 313 x 313, larger ones alone
        self.max_batch_pixels = max_batch_pixels
        self.max_wait = max(0.0, max_wait)
        self._queue: deque[tuple[NDArray[np.float32], Future[NDArray[np.float32]]]] = deque()
        self._cond = threading.Condition()
        self._pending = 0  # announced by callers, not yet queued
        self._busy = False  # a runtime call is running (the worker's or a lone caller's)
        self._closed = False
        self.batches = 0
        self.items = 0
        self._thread = threading.Thread(target=self._loop, name="pixelmill-batcher", daemon=True)
        self._thread.start()

    def announce(self, count: int) -> None:
        """Tell the batcher ``count`` more inputs are coming (lets it wait for them)."""
        with self._cond:
            self._pending += count

    def submit(
        self, x: NDArray[np.float32], *, announced: bool = False
    ) -> Future[NDArray[np.float32]]:
        """Queue ``x`` for the worker; once the batcher is closed (its model evicted from
        the serving cache while a request still holds it) ``x`` runs at once in this
        thread instead: a closed batcher still answers, it only stops batching."""
        future: Future[NDArray[np.float32]] = Future()
        with self._cond:
            if announced:
                self._pending -= 1
            if not self._closed:
                self._queue.append((x, future))
                self._cond.notify()
                return future
        try:
            future.set_result(self.runner(x[None])[0])
        except BaseException as exc:  # the caller's result() raises it
            future.set_exception(exc)
        return future

    def run(self, inputs: list[NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        """Submit several inputs (e.g. the tiles of one image) and wait for all outputs;
        one input alone with an idle runtime runs at once in this thread."""
        if len(inputs) == 1 and self._claim():
            ran = 0
            try:
                out = self.runner(inputs[0][None])
                ran = 1
            finally:
                self._release(ran)
            return [out[0]]
        self.announce(len(inputs))
        futures = [self.submit(x, announced=True) for x in inputs]
        return [f.result() for f in futures]

    def _claim(self) -> bool:
        """Take the runtime for a lone input: nothing queued or announced, no call running."""
        with self._cond:
            if self._queue or self._pending or self._busy or self._closed:
                return False
            self._busy = True
            return True

    def _release(self, items: int) -> None:
        """The runtime is free again; ``items`` inputs ran (0: the call failed)."""
        with self._cond:
            self._busy = False
            self.batches += int(items > 0)
            self.items += items
            if self._queue or self._closed:  # the worker's turn (else it sleeps on)
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _take(self) -> list[tuple[NDArray[np.float32], Future[NDArray[np.float32]]]]:
        with self._cond:
            while self._busy or (not self._queue and not self._closed):
                self._cond.wait()
            if not self._queue:
                return []
            deadline = time.monotonic() + self.max_wait
            shape = self._queue[0][0].shape
            limit = batch_limit(shape, self.max_batch, self.max_batch_pixels)
            while len(self._queue) < limit and self._pending > 0 and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch: list[tuple[NDArray[np.float32], Future[NDArray[np.float32]]]] = []
            rest: deque[tuple[NDArray[np.float32], Future[NDArray[np.float32]]]] = deque()
            while self._queue and len(batch) < limit:
                item = self._queue.popleft()
                (batch if item[0].shape == shape else rest).append(item)
            rest.extend(self._queue)
            self._queue.clear()
            self._queue.extend(rest)
            self._busy = bool(batch)
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                return
            live = [(x, f) for x, f in batch if f.set_running_or_notify_cancel()]
            if not live:
                self._release(0)
                continue
            try:
                out = self.runner(np.stack([x for x, _ in live]))
            except BaseException as exc:  # hand the failure to every waiting caller
                self._release(0)
                for _, f in live:
                    f.set_exception(exc)
                continue
            self._release(len(live))
            for i, (_, f) in enumerate(live):
                f.set_result(out[i])
