"""Job retention: delete finished jobs older than ``jobs.retention_days``.

A purge deletes jobs that *finished* (succeeded, failed or cancelled) before the cutoff,
oldest first, in batches: each batch's job, task and event rows go in one transaction,
then — only after that commit — the batch's artifact objects (``jobs/{id}/…`` in
object storage). A crash between the two leaves objects no row points to (harmless,
and invisible to users); never a row pointing to a deleted object.

A job a study analysis refers to is never purged: its artifacts are the analysis's
results, study data that outlive the job queue (the store's ``purge_finished`` skips it;
deleting the study releases it).

Result *images* stay: they are ordinary images (``/v1/images/{id}``), a user may have
shared or embedded their URLs, and the same content-addressed image can be the result
of several jobs or an upload of its own. Delete them like any image
(``DELETE /v1/images/{id}``); their ``job_id`` keeps naming the job they came from.

:class:`RetentionSweeper` runs one bounded batch per ``jobs.retention_interval_s`` in
every job worker and embedded gateway (sooner while a backlog remains); several
processes sweeping at once take different jobs (see
:meth:`~pixelmill.backends.metadata.jobs.JobStore.purge_finished`).
``pixelmill jobs purge`` runs it by hand.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pixelmill.backends.metadata.jobs import JobStore, PurgedJob
from pixelmill.backends.storage.base import Storage
from pixelmill.observability import metrics

log = logging.getLogger("pixelmill.jobs.retention")

#: the pause before the next batch while a backlog remains (seconds)
BACKLOG_PAUSE_S = 1.0
#: longest wait before a process's first sweep (it starts at a random point of it)
FIRST_SWEEP_MAX_S = 60.0


@dataclass(frozen=True)
class PurgeResult:
    """What a purge deleted: ``jobs`` (with their tasks and events), ``objects``
    (artifact objects) and ``more`` — true when it stopped at ``max_batches`` with a
    full last batch, so more jobs may be due."""

    jobs: int
    objects: int
    more: bool
    before: datetime


def cutoff(older_than_days: float, *, now: datetime | None = None) -> datetime:
    """The instant before which a job must have finished to be purged."""
    return (now or datetime.now(UTC)) - timedelta(days=older_than_days)


def purge(
    repo: JobStore,
    storage: Storage,
    *,
    older_than_days: float,
    batch: int = 200,
    max_batches: int | None = None,
    now: datetime | None = None,
) -> PurgeResult:
    """Delete jobs that finished more than ``older_than_days`` days ago (fractions
    allowed), ``batch`` jobs per transaction, at most ``max_batches`` batches (``None``:
    until none is left). Their artifact objects are deleted after each batch commits."""
    before = cutoff(older_than_days, now=now)
    jobs = objects = batches = 0
    while max_batches is None or batches < max_batches:
        deleted = repo.purge_finished(before=before, limit=batch)
        batches += 1
        jobs += len(deleted)
        objects += delete_objects(storage, deleted)
        if deleted:
            metrics.JOBS_PURGED.inc(len(deleted))
        if len(deleted) < batch:
            return PurgeResult(jobs, objects, False, before)
    return PurgeResult(jobs, objects, True, before)


def delete_objects(storage: Storage, deleted: Iterable[PurgedJob]) -> int:
    """Delete the objects of purged jobs: the keys their tasks recorded and anything
    else under ``jobs/{id}/`` (a run that died before recording its artifacts). A
    failure is logged, not raised: the rows are gone already, a leftover object is
    harmless. Returns how many objects were deleted."""
    count = 0
    for job in deleted:
        keys = set(job.artifact_keys)
        try:
            keys.update(storage.list(f"jobs/{job.id}/"))
            for key in sorted(keys):
                storage.delete(key)
                count += 1
        except Exception as exc:  # storage down: the rows are gone, objects may stay
            log.warning("job %s deleted; some of its artifact objects remain: %s", job.id, exc)
    return count


class RetentionSweeper:
    """Purges one batch of expired jobs every ``interval_s`` in a daemon thread (the
    next batch after :data:`BACKLOG_PAUSE_S` while a backlog remains), until ``stop``
    is set. The first sweep comes at a random point of the first minute, so processes
    started together do not sweep in step."""

    def __init__(
        self,
        repo: JobStore,
        storage: Storage,
        *,
        retention_days: float,
        interval_s: float,
        batch: int,
        stop: threading.Event,
    ) -> None:
        self.repo = repo
        self.storage = storage
        self.retention_days = retention_days
        self.interval_s = interval_s
        self.batch = batch
        self.stop = stop
        self.thread: threading.Thread | None = None

    def sweep(self) -> PurgeResult:
        """One bounded run: at most one batch."""
        result = purge(
            self.repo,
            self.storage,
            older_than_days=self.retention_days,
            batch=self.batch,
            max_batches=1,
        )
        if result.jobs:
            log.info(
                "retention: deleted %d job(s) finished before %s and %d artifact object(s)",
                result.jobs,
                result.before.isoformat(timespec="seconds"),
                result.objects,
            )
        return result

    def _loop(self) -> None:
        wait = random.uniform(0.5, 1.0) * min(self.interval_s, FIRST_SWEEP_MAX_S)
        while not self.stop.wait(wait):
            wait = self.interval_s
            try:
                if self.sweep().more:
                    wait = min(BACKLOG_PAUSE_S, self.interval_s)
            except Exception as exc:  # the DB may be down: try again next time
                log.warning("retention sweep failed: %s", exc)

    def start(self) -> threading.Thread:
        self.thread = threading.Thread(target=self._loop, name="pm-job-retention", daemon=True)
        self.thread.start()
        return self.thread
