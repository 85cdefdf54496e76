"""The job store: what the job services need from wherever jobs are kept.

A job is the durable record of one submitted unit of work; its tasks are what the
broker delivers (``(job id, task index)``), its events what an SSE stream replays. Every
store — :class:`~pixelmill.backends.metadata.jobs.sql.JobRepository` (SQLite,
PostgreSQL) and :class:`~pixelmill.backends.metadata.jobs.memory.MemoryJobStore` —
keeps the same promises, checked by ``tests/contract/test_jobs_contract.py``:

* transitions follow :mod:`~pixelmill.backends.metadata.jobs.states` and are guarded,
  so a redelivered task cannot finish twice and a job reaches a terminal state once;
* a job's events get increasing ids in the order they happened, so a reader polling
  ``after=last`` never skips one;
* ``(owner, idempotency_key)`` names at most one job;
* with ``owner``, another key's job is ``NotFound`` exactly like an unknown id.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pixelmill.backends.metadata.jobs.states import ACTIVE, TERMINAL, State, can_move

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "Aggregate",
    "EventRecord",
    "Finish",
    "JobRecord",
    "JobStore",
    "PurgedJob",
    "Started",
    "State",
    "TaskRecord",
    "TaskRef",
    "failure_summary",
    "new_job_id",
]


def new_job_id() -> str:
    """32 hex chars: 48 bits of milliseconds then 80 random bits, so ids sort by time."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


@dataclass(frozen=True)
class JobRecord:
    id: str
    kind: str
    state: State
    queue: str
    priority: int
    params: dict[str, Any]
    inputs: list[str]
    owner: str
    idempotency_key: str | None
    request_hash: str | None
    total: int
    succeeded: int
    failed: int
    cancelled: int
    time_limit_s: float
    max_retries: int
    result: Any
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.cancelled

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True)
class TaskRecord:
    job_id: str
    idx: int
    queue: str
    state: State
    input: str | None
    attempts: int
    progress: float
    message: str | None
    result_image: str | None
    artifacts: list[dict[str, Any]] | None
    result: Any
    error: str | None
    last_error: str | None
    published_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class EventRecord:
    id: int
    job_id: str
    type: str
    data: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class TaskRef:
    """What the broker needs to (re)publish one task."""

    job_id: str
    idx: int
    queue: str
    priority: int


@dataclass(frozen=True)
class PurgedJob:
    """A job deleted by :meth:`JobStore.purge_finished`: its id and the storage keys
    of its tasks' artifacts."""

    id: str
    artifact_keys: list[str]


@dataclass(frozen=True)
class Started:
    """A task run that may go ahead: the job (as of the start) and the task's attempt."""

    job: JobRecord
    task: TaskRecord


@dataclass
class Finish:
    """The outcome of one task run, as recorded by :meth:`JobStore.finish_task`."""

    state: Literal["succeeded", "failed", "cancelled"]
    result_image: str | None = None
    artifacts: list[dict[str, Any]] | None = None
    result: Any = None
    error: str | None = None
    #: states the task may be finished from (dead-lettering also accepts ``queued``);
    #: only those the state machine allows towards ``state`` count
    from_states: tuple[State, ...] = ("running",)
    extra: dict[str, Any] = field(default_factory=dict)

    def sources(self) -> tuple[State, ...]:
        """The states the task may be finished from: those of :attr:`from_states` the
        state machine allows towards :attr:`state` (the store's ``WHERE state IN``)."""
        return tuple(s for s in self.from_states if can_move("task", s, self.state))


#: a job kind's result from its job and its tasks (in index order), when it completes
Aggregate = Callable[[JobRecord, list[TaskRecord]], Any]


def failure_summary(tasks: Sequence[TaskRecord]) -> str:
    """A failed job's ``error``: how many tasks failed or were cancelled, and why the
    first failure happened."""
    failed = [t for t in tasks if t.state == "failed"]
    cancelled = sum(t.state == "cancelled" for t in tasks)
    parts = []
    if failed:
        first = failed[0]
        where = f"input {first.input}" if first.input else f"task {first.idx}"
        parts.append(f"{len(failed)} of {len(tasks)} tasks failed; first ({where}): {first.error}")
    if cancelled:
        parts.append(f"{cancelled} of {len(tasks)} tasks cancelled")
    return "; ".join(parts)


class JobStore(Protocol):
    """Jobs, their tasks and their events, with guarded state transitions.

    Times are aware UTC datetimes; errors are ours (``NotFound``, ``InvalidParameter``,
    ``BackendUnavailable``), never a driver's."""

    # -- create and read ----------------------------------------------------------------
    def create(
        self,
        job: dict[str, Any],
        tasks: Sequence[tuple[int, str | None]],
        *,
        images: Sequence[str] = (),
    ) -> tuple[JobRecord, bool]:
        """Store a ``queued`` job (``job``: the :class:`JobRecord` fields a submitter
        sets), its tasks (``(index, input image id)``) and its ``queued`` event, all or
        nothing, once every id in ``images`` is a stored image (``InvalidParameter``
        naming the ``missing`` ones otherwise). Returns ``(record, created)``; when the
        ``(owner, idempotency_key)`` is taken the existing job comes back, not created."""
        ...

    def find_by_idempotency_key(self, owner: str, key: str) -> JobRecord | None: ...

    def get(self, job_id: str, *, owner: str | None = None) -> JobRecord:
        """The job; with ``owner``, ``NotFound`` unless that key submitted it."""
        ...

    def tasks(self, job_id: str) -> list[TaskRecord]:
        """The job's tasks in index order (none for an unknown job)."""
        ...

    def task(self, job_id: str, idx: int) -> TaskRecord:
        """One task; ``NotFound`` when there is no such task."""
        ...

    def list_jobs(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        after: str | None = None,
        owner: str | None = None,
    ) -> list[JobRecord]:
        """Newest first; ``after`` is the last id of the previous page."""
        ...

    def count(self, *, state: str | None = None) -> int: ...

    def queued_tasks(self, queue: str) -> int:
        """Tasks waiting in ``queue``, including ones not yet handed to the broker."""
        ...

    def queue_stats(self) -> list[tuple[str, str, int, datetime | None]]:
        """``(queue, state, tasks, oldest created_at)`` for the ``queued`` and
        ``running`` tasks of each queue that has any (the USE metrics)."""
        ...

    def events(self, job_id: str, *, after: int = 0, limit: int = 500) -> list[EventRecord]:
        """The job's events with ids above ``after``, oldest first."""
        ...

    # -- publishing ---------------------------------------------------------------------
    def mark_published(self, job_id: str, idxs: Sequence[int] | None = None) -> None:
        """Note that the tasks ``idxs`` (``None``: all) of a job reached the broker."""
        ...

    def mark_jobs_published(self, job_ids: Sequence[str]) -> None: ...

    def unmark_published(self, refs: Sequence[TaskRef]) -> None:
        """Undo a claim whose publish failed, so the next sweep claims them again."""
        ...

    def claim_unpublished(self, *, older_than_s: float, limit: int = 500) -> list[TaskRef]:
        """Queued tasks never handed to the broker, created more than ``older_than_s``
        seconds ago; each claimed (marked published) by exactly one caller."""
        ...

    def unfinished(self) -> list[TaskRef]:
        """Every queued or running task (recovery by an in-process broker at start)."""
        ...

    # -- transitions --------------------------------------------------------------------
    def start_task(self, job_id: str, idx: int) -> Started | None:
        """Move a task to ``running`` and count the attempt (the job too, on its first
        start); ``None`` when the task or job is finished already, or unknown."""
        ...

    def progress(self, job_id: str, idx: int, fraction: float, message: str | None) -> None:
        """Record a running task's progress (0..1) and an optional short message."""
        ...

    def retry_later(self, job_id: str, idx: int, error: str) -> None:
        """A running task failed in a way a retry may fix: back to ``queued``."""
        ...

    def finish_task(
        self,
        job_id: str,
        idx: int,
        outcome: Finish,
        *,
        aggregate: Aggregate | None = None,
        started: Started | None = None,
    ) -> JobRecord | None:
        """Record a task's outcome, completing the job after its last task (its result
        from ``aggregate``). ``None`` when the task was finished already (a duplicate).
        A success reported after the job was cancelled is recorded as ``cancelled``.
        ``started`` is the caller's view of the run (a hint some stores use)."""
        ...

    def cancel(self, job_id: str, *, owner: str | None = None) -> tuple[JobRecord, bool]:
        """Cancel an active job with every queued or running task; ``(job, changed)``."""
        ...

    # -- retention ----------------------------------------------------------------------
    def count_finished(self, *, before: datetime) -> int:
        """Jobs that finished before ``before``."""
        ...

    def purge_finished(self, *, before: datetime, limit: int) -> list[PurgedJob]:
        """Delete up to ``limit`` jobs that finished before ``before``, oldest first,
        with their tasks and events; concurrent callers never return the same job."""
        ...

    def dispose(self) -> None:
        """Release connections or threads the store holds."""
        ...
