"""The job daemon: what a process that runs jobs does besides answering the API.

It consumes queues and runs their tasks (through the :class:`TaskRunner`), re-publishes
tasks that never reached the broker, deletes expired jobs (retention) and, with the
in-process broker, recovers unfinished tasks at start. Only processes that run jobs
start it: a worker, and an embedded gateway; a distributed gateway never does.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pixelmill.backends.broker.base import Consumer, TaskMessage
from pixelmill.backends.metadata.jobs import TaskRef
from pixelmill.errors import BackendUnavailable
from pixelmill.observability import metrics
from pixelmill.queues import QUEUES
from pixelmill.services.jobs.retention import RetentionSweeper
from pixelmill.services.jobs.runner import TaskRunner

if TYPE_CHECKING:
    from pixelmill.services.jobs.deps import JobDeps

log = logging.getLogger("pixelmill.jobs")


class JobDaemon:
    """Consumers, the re-publish sweeper and the retention sweep of one process."""

    def __init__(self, deps: JobDeps) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.broker = deps.broker
        self.repo = deps.store
        self.runner = TaskRunner(deps)
        self._consumer: Consumer | None = None
        self._threads = 0
        self._sweeper: threading.Thread | None = None
        self._retention: RetentionSweeper | None = None
        self._stop = threading.Event()
        self._recovery_lock: int | None = None

    def serve(self, queues: Sequence[str], *, threads: int) -> Consumer:
        """Consume ``queues`` with ``threads`` task threads in this process."""
        consumer = self.broker.serve(
            queues, self.runner.handle, on_dead_letter=self.runner.dead_letter, threads=threads
        )
        self._consumer = consumer
        metrics.WORKER_THREADS.inc(threads)
        self._threads = threads
        return consumer

    def recover(self) -> int:
        """Re-publish every unfinished task (in-process broker at start). Returns how many."""
        refs = self.repo.unfinished()
        retries: dict[str, int] = {}
        for ref in refs:
            self._publish(ref, retries)
        if refs:
            log.info("recovered %d unfinished task(s) of %d job(s)", len(refs), len(retries))
        return len(refs)

    def republish_unpublished(self) -> int:
        """Publish queued tasks that never reached the broker; returns how many."""
        refs = self.repo.claim_unpublished(older_than_s=self.settings.republish_after_s)
        done = 0
        retries: dict[str, int] = {}
        for ref in refs:
            try:
                self._publish(ref, retries)
                done += 1
            except BackendUnavailable:
                self.repo.unmark_published(refs[done:])
                break
            except Exception:
                # claimed but not published: give them back for the next sweep, or they
                # would stay marked published and never run
                self.repo.unmark_published(refs[done:])
                raise
        if done:
            log.info("re-published %d task(s) that never reached the broker", done)
        return done

    def _publish(self, ref: TaskRef, retries: dict[str, int]) -> None:
        """Publish one task with its job's retry limit (``retries``: job id -> limit, read
        once per job)."""
        if ref.job_id not in retries:
            retries[ref.job_id] = self.repo.get(ref.job_id).max_retries
        self.broker.publish(
            ref.queue,
            TaskMessage(ref.job_id, ref.idx),
            priority=ref.priority,
            max_retries=retries[ref.job_id],
        )

    def start_sweeper(self) -> None:
        """Periodically re-publish tasks that never reached the broker."""

        def loop() -> None:
            while not self._stop.wait(self.settings.sweep_interval_s):
                try:
                    self.republish_unpublished()
                except Exception as exc:  # the DB or broker may be down; try again later
                    log.warning("re-publish sweep failed: %s", exc)

        self._sweeper = threading.Thread(target=loop, name="pm-job-sweeper", daemon=True)
        self._sweeper.start()

    def start_retention(self) -> None:
        """Delete expired finished jobs periodically in this process (``jobs.retention_*``;
        nothing when ``retention_days`` is 0). Idempotent."""
        if self.settings.retention_days <= 0 or self._retention is not None:
            return
        self._retention = RetentionSweeper(
            self.repo,
            self.deps.storage,
            retention_days=self.settings.retention_days,
            interval_s=self.settings.retention_interval_s,
            batch=self.settings.retention_batch,
            stop=self._stop,
        )
        self._retention.start()

    def start_embedded(self) -> None:
        """Embedded mode: recover unfinished tasks and run them in this process.

        With several server processes on one data dir, only the first to start (the
        holder of ``DATA_DIR/jobs-recovery.lock``) re-publishes unfinished tasks, so a
        restart does not run each of them once per process."""
        if self._consumer is not None or self.settings.embedded_threads == 0:
            return
        if self._claim_recovery():
            self.recover()
        self.serve(QUEUES, threads=self.settings.embedded_threads)

    def _claim_recovery(self) -> bool:
        path = self.deps.data_dir / "jobs-recovery.lock"
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._recovery_lock = fd  # held for the life of this process
        return True

    def alive(self) -> bool:
        """True while this process consumes its queues (a worker's liveness probe)."""
        return self._consumer is not None and self._consumer.alive()

    def stop(self, timeout_s: float = 20.0) -> None:
        self._stop.set()
        if self._consumer is not None:
            self._consumer.stop(timeout_s)
            self._consumer = None
            metrics.WORKER_THREADS.dec(self._threads)

    def close(self) -> None:
        """Stop (briefly) and let go of the recovery lock."""
        self.stop(timeout_s=5.0)
        if self._recovery_lock is not None:
            os.close(self._recovery_lock)
            self._recovery_lock = None
