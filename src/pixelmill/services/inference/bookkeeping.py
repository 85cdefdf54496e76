"""Drift bookkeeping off the request path.

Each served image feeds its model's :class:`~pixelmill.ml.drift.DriftMonitor` (a
histogram and a few features) and the rollback watcher's healthy-prediction count. That
work is about 1 ms per image, and nothing in a prediction's answer needs it first, so a
background thread does it from a bounded queue. Nothing is dropped: a full queue makes
the prediction wait for room (backpressure), :meth:`Bookkeeper.flush` waits until every
queued image is counted (the drift and health endpoints call it, so what they show
includes every answered prediction), and :meth:`Bookkeeper.close` flushes before it stops.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from pixelmill.observability import metrics

if TYPE_CHECKING:
    from pixelmill.services.inference.loaded import LoadedModel
    from pixelmill.services.inference.rollback import RollbackWatcher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Served:
    loaded: LoadedModel
    image: NDArray[np.generic]
    seconds: float


class Bookkeeper:
    """A thread (started on first use) that counts served images into drift state."""

    def __init__(
        self, maxsize: int, watcher: Callable[[], RollbackWatcher | None] = lambda: None
    ) -> None:
        self._queue: queue.Queue[_Served | None] = queue.Queue(maxsize=maxsize)
        self._watcher = watcher
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._closed = False

    def submit(self, loaded: LoadedModel, image: NDArray[np.generic], seconds: float) -> None:
        """Queue one served ``image`` (waits while the queue is full); counted in this
        thread instead when the bookkeeper is closed."""
        item = _Served(loaded, image, seconds)
        if self._closed or not self._running():
            self._count(item)
            return
        self._queue.put(item)

    def flush(self) -> None:
        """Return once every image queued so far is counted."""
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        """Count what is queued, then stop the thread."""
        with self._start:
            self._closed = True
            thread = self._thread
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
                self._count(item)
            except Exception:  # one bad image must not stop the counting of the others
                log.exception("drift bookkeeping failed for %s", item and item.loaded.version.ref)
            finally:
                self._queue.task_done()

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
