"""Drift bookkeeping off the request path.

Each served image feeds its model's :class:`~pixelmill.ml.drift.DriftMonitor` (a
histogram and a few features) and the rollback watcher's healthy-prediction count. That
work is about 1 ms per image, and nothing in a prediction's answer needs it first, so a
background thread does it from a bounded queue. Nothing is dropped: a full queue makes
the prediction wait for room (backpressure), :meth:`Bookkeeper.flush` waits until every
queued image is counted (the drift and health endpoints call it, so what they show
includes every answered prediction), and :meth:`Bookkeeper.close` flushes before it stops.

The thread also waits while a prediction is being answered (:meth:`Bookkeeper.serving`):
run beside the Python parts of one, its numpy work took the GIL from the answering
thread often enough to stretch a 256 x 256 prediction's mask encoding from 1.7 to 4.9 ms
on a loaded 2-core machine (docs/benchmarks.md, "ML serving over HTTP"). Inside the
runtime call (:meth:`Bookkeeper.in_runtime`, where ONNX Runtime releases the GIL) it
counts only when the runtime leaves a core free (``beside_runtime``): beside a runtime
on every core, its 0.7 ms of CPU made each 256 x 256 inference 1.0-1.4 ms slower (the
runtime's threads wait for the one it delayed). It waits at most
:data:`MAX_DEFER_S` for a moment without one, and not at all once the queue is half
full, while :meth:`~Bookkeeper.flush` waits, or once closing.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import wraps
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from pixelmill.observability import metrics

if TYPE_CHECKING:
    from pixelmill.services.inference.loaded import LoadedModel
    from pixelmill.services.inference.rollback import RollbackWatcher

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class _Keeps(Protocol):
    bookkeeper: Bookkeeper


S = TypeVar("S", bound=_Keeps)


def answering(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """A method that answers a prediction: ``self.bookkeeper`` counts after it."""

    @wraps(method)
    def answer(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.bookkeeper.serving():
            return method(self, *args, **kwargs)

    return answer


#: whether this context is answering a prediction (contextvars reach worker threads)
_ANSWERING: contextvars.ContextVar[bool] = contextvars.ContextVar("answering", default=False)

#: longest wait of a served image for a moment without a prediction being answered
MAX_DEFER_S = 0.25


def leaves_a_core(inference_threads: int, cores: int | None = None) -> bool:
    """Whether ONNX Runtime with ``inference_threads`` intra-op threads (0: one per core)
    leaves one of ``cores`` (this machine's) free for counting beside it."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return 0 < inference_threads < cores


@dataclass(frozen=True)
class _Served:
    loaded: LoadedModel
    image: NDArray[np.generic]
    seconds: float
    queued: float = field(default_factory=time.monotonic)


class Bookkeeper:
    """A thread (started on first use) that counts served images into drift state."""

    def __init__(
        self,
        maxsize: int,
        watcher: Callable[[], RollbackWatcher | None] = lambda: None,
        *,
        beside_runtime: bool = False,
    ) -> None:
        self._queue: queue.Queue[_Served | None] = queue.Queue(maxsize=maxsize)
        self._watcher = watcher
        #: count while answers are inside the runtime (it leaves a core free)
        self.beside_runtime = beside_runtime
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._closed = False
        self._idle = threading.Condition()
        self._answering = 0  # predictions being answered now
        self._in_runtime = 0  # of which inside the runtime call (the GIL released)
        self._hurry = 0  # flushes waiting: count at once

    def submit(self, loaded: LoadedModel, image: NDArray[np.generic], seconds: float) -> None:
        """Queue one served ``image`` (waits while the queue is full); counted in this
        thread instead when the bookkeeper is closed."""
        item = _Served(loaded, image, seconds)
        if self._closed or not self._running():
            self._count(item)
            return
        self._queue.put(item)

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Around the answering of a prediction: the thread counts images after it, or
        while it is inside the runtime call (:meth:`in_runtime`). Nested (the gateway
        around the service, in this context or a worker thread's copy of it), it counts
        once."""
        if _ANSWERING.get():
            yield
            return
        token = _ANSWERING.set(True)
        with self._idle:
            self._answering += 1
        try:
            yield
        finally:
            _ANSWERING.reset(token)
            with self._idle:
                self._answering -= 1
                self._idle.notify_all()

    @contextlib.contextmanager
    def in_runtime(self) -> Iterator[None]:
        """Around the runtime call of an answered prediction: ONNX Runtime releases the
        GIL, so counting beside it takes nothing from the answering thread."""
        if not _ANSWERING.get():
            yield
            return
        with self._idle:
            self._in_runtime += 1
            self._idle.notify_all()
        try:
            yield
        finally:
            with self._idle:
                self._in_runtime -= 1

    def flush(self) -> None:
        """Return once every image queued so far is counted."""
        if self._thread is not None:
            with self._idle:
                self._hurry += 1
                self._idle.notify_all()
            try:
                self._queue.join()
            finally:
                with self._idle:
                    self._hurry -= 1

    def close(self) -> None:
        """Count what is queued, then stop the thread."""
        with self._start:
            self._closed = True
            thread = self._thread
        with self._idle:
            self._idle.notify_all()
        if thread is not None:
            self._queue.put(None)
            thread.join()
            self._thread = None
        while True:  # put by a submit racing with close, after the stop marker
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._count(item)

    def _running(self) -> bool:
        with self._start:
            if self._closed:
                return False
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="pixelmill-drift", daemon=True
                )
                self._thread.start()
            return True

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._wait_for_a_pause(item)
                self._count(item)
            except Exception:  # one bad image must not stop the counting of the others
                log.exception("drift bookkeeping failed for %s", item and item.loaded.version.ref)
            finally:
                self._queue.task_done()

    def _wait_for_a_pause(self, item: _Served) -> None:
        """Until no prediction is being answered, or all are inside a runtime that leaves
        a core free (at most until ``MAX_DEFER_S`` after the image was queued; not at all
        with the queue half full, a flush or a close)."""
        deadline = item.queued + MAX_DEFER_S
        with self._idle:
            while (
                self._answering > (self._in_runtime if self.beside_runtime else 0)
                and not self._hurry
                and not self._closed
            ):
                left = deadline - time.monotonic()
                if left <= 0 or self._queue.qsize() * 2 >= (self._queue.maxsize or 1):
                    return
                self._idle.wait(left)

    def _count(self, item: _Served) -> None:
        loaded, v = item.loaded, item.loaded.version
        state = loaded.drift.observe(item.image)
        loaded.drift_state = state.to_dict()
        metrics.MODEL_DRIFT_SCORE.labels(v.model, str(v.version)).set(state.score)
        watcher = self._watcher()
        if watcher is not None:
            watcher.observe(
                v, ok=True, seconds=item.seconds, drift=state.score, drift_window=state.window
            )
