"""What the job service, its daemon and its task runner are built from.

The composition root (``pixelmill.runtime.container``) makes one :class:`JobDeps` per
process; the services receive it and never build a backend themselves.
"""

from __future__ import annotations

import logging
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
    root subscribes what follows a job (a study's analysis record and its event)."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[JobRecord], None]] = []

    def subscribe(self, listener: Callable[[JobRecord], None]) -> None:
        self._listeners.append(listener)

    def publish(self, job: JobRecord) -> None:
        """Tell every listener. The job's end is already recorded: a listener that
        fails is logged, and its readers catch up (an analysis refreshes when read)."""
        for listener in self._listeners:
            try:
                listener(job)
            except Exception:
                log.exception("after job %s ended, %r failed", job.id, listener)


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
    #: told when a job this process records reaches its end
    finished: FinishedJobs = field(default_factory=FinishedJobs)
