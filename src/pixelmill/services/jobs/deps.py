"""What the job service, its daemon and its task runner are built from.

The composition root (``pixelmill.runtime.container``) makes one :class:`JobDeps` per
process; the services receive it and never build a backend themselves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pixelmill.backends.broker.base import Broker
    from pixelmill.backends.metadata.changes import JobChanges
    from pixelmill.backends.metadata.jobs import JobRecord, JobStore
    from pixelmill.backends.storage.base import Storage
    from pixelmill.services.images import ImageService
    from pixelmill.services.jobs.kinds import JobKinds
    from pixelmill.settings import JobsSettings

log = logging.getLogger("pixelmill.jobs")


class FinishedJobs:
    """Who is told, in the process that records it, that a job reached its end
    (succeeded, failed or cancelled): a worker, or an embedded gateway. The composition
    root subscribes what follows a job (a study's analysis record and its event).

    ``subscribe`` listeners hear each job at once, on the thread that ended it (before
    its message is acknowledged). ``subscribe_batch`` listeners hear the jobs that ended
    since they last heard, as a list, on one thread of their own: what they do for a
    batch (a look-up of which jobs are a study's analyses, say) then costs one query
    for many jobs, and not a query on the task's path for each."""

    def __init__(self, *, batch_window_s: float = 0.2) -> None:
        #: after a batch the next waits this long, so a busy worker's batch listeners run
        #: at most ~5 times a second however many jobs end
        self.batch_window_s = batch_window_s
        self._listeners: list[Callable[[JobRecord], None]] = []
        self._batch_listeners: list[Callable[[list[JobRecord]], None]] = []
        self._pending: list[JobRecord] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def subscribe(self, listener: Callable[[JobRecord], None]) -> None:
        self._listeners.append(listener)

    def subscribe_batch(self, listener: Callable[[list[JobRecord]], None]) -> None:
        self._batch_listeners.append(listener)

    def publish(self, job: JobRecord) -> None:
        """Tell every listener. The job's end is already recorded: a listener that
        fails is logged, and its readers catch up (an analysis refreshes when read)."""
        for listener in self._listeners:
            try:
                listener(job)
            except Exception:
                log.exception("after job %s ended, %r failed", job.id, listener)
        if not self._batch_listeners:
            return
        with self._wake:
            self._pending.append(job)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._deliver_loop, name="pm-finished-jobs", daemon=True
                )
                self._thread.start()
            if len(self._pending) == 1:  # else the thread is awake or gathering already
                self._wake.notify()

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is pending and stop the batch thread."""
        with self._wake:
            self._closed = True
            thread = self._thread
            # wakes the thread wherever it waits: idle with nothing pending, or gathering
            self._wake.notify_all()
        if thread is not None:
            thread.join(timeout_s)
        self._deliver(self._take())  # published after the thread left, if any

    def _take(self) -> list[JobRecord]:
        with self._wake:
            batch, self._pending = self._pending, []
        return batch

    def _deliver_loop(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                closed = self._closed
            self._deliver(self._take())
            if closed:
                return
            with self._wake:  # let the next batch gather (a close ends the wait)
                self._wake.wait_for(lambda: self._closed, timeout=self.batch_window_s)

    def _deliver(self, jobs: list[JobRecord]) -> None:
        if not jobs:
            return
        for listener in self._batch_listeners:
            try:
                listener(jobs)
            except Exception:
                log.exception("after %d jobs ended, %r failed", len(jobs), listener)


@dataclass(frozen=True)
class JobDeps:
    """The collaborators of the job system in one process."""

    settings: JobsSettings
    #: the durable record of every job, task and event
    store: JobStore
    #: carries ``(job, task)`` messages from submitters to workers
    broker: Broker
    #: the job kinds this process can validate and run
    kinds: JobKinds
    #: artifacts and resumable task state
    storage: Storage
    #: input records at submit time; result images of tasks
    images: ImageService
    #: news about jobs for event streams
    changes: JobChanges
    #: holds the embedded mode's recovery lock file
    data_dir: Path
    #: called with the owner before a new job is stored; raises when they may not start
    #: another (the concurrent-jobs quota, services/workspace/quotas.py)
    admit: Callable[[str], None] | None = None
    #: called as each task starts with the job's owner, the job id and the images the task
    #: reads; raises (403) when the owner may no longer have it run: disabled, gone, or no
    #: longer allowed to read one of them (services/workspace/run_rights.py)
    may_run: Callable[[str, str, list[str]], None] | None = None
    #: told when a job this process records reaches its end
    finished: FinishedJobs = field(default_factory=FinishedJobs)
