"""The job store in memory: the same contract as the SQL store, in one process.

For tests, tools and anything that runs jobs without a database. One lock serialises
every call, which gives the guarantees the SQL store gets from its job row lock: a
guarded transition happens once, a job completes once, and events get increasing ids
in the order they happened. Stored JSON values go through the same encoder as the SQL
JSON columns (integer keys become strings, tuples lists, numpy values plain numbers),
so what a reader gets back does not depend on the store.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from pixelmill.backends.metadata._time import now as _now
from pixelmill.backends.metadata.jobs.base import (
    Aggregate,
    EventRecord,
    Finish,
    JobRecord,
    PurgedJob,
    Started,
    TaskRecord,
    TaskRef,
    failure_summary,
)
from pixelmill.backends.metadata.jobs.states import (
    ACTIVE,
    TERMINAL,
    State,
    can_move,
    job_outcome,
)
from pixelmill.errors import Conflict, NotFound, missing_ids

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_JOB_FIELDS = tuple(JobRecord.__dataclass_fields__)


def _stored(value: Any) -> Any:
    """``value`` as a JSON column gives it back (a copy: later changes to the caller's
    object do not leak in)."""
    return None if value is None else orjson.loads(orjson.dumps(value, option=_JSON_OPTIONS))


class MemoryJobStore:
    """A :class:`~pixelmill.backends.metadata.jobs.base.JobStore` in a dict.

    ``image_exists`` says whether an image id is stored (for ``create(images=...)``);
    without it no image is, as in an empty database."""

    def __init__(self, *, image_exists: Callable[[str], bool] | None = None) -> None:
        self._image_exists = image_exists or (lambda _image_id: False)
        self._lock = threading.Lock()
        self._jobs: dict[str, JobRecord] = {}
        self._tasks: dict[str, dict[int, TaskRecord]] = {}
        self._events: dict[str, list[EventRecord]] = {}
        self._keys: dict[tuple[str, str], str] = {}
        self._event_ids = itertools.count(1)

    # -- create and read ----------------------------------------------------------------
    def create(
        self,
        job: dict[str, Any],
        tasks: Sequence[tuple[int, str | None]],
        *,
        images: Sequence[str] = (),
    ) -> tuple[JobRecord, bool]:
        now = _now()
        row: dict[str, Any] = {
            "owner": "",
            "priority": 0,
            "state": "queued",
            "succeeded": 0,
            "failed": 0,
            "cancelled": 0,
            "created_at": now,
            "updated_at": now,
            **job,
            "total": len(tasks),
        }
        row["params"], row["inputs"] = _stored(row["params"]), _stored(row["inputs"])
        fields: dict[str, Any] = {name: row.get(name) for name in _JOB_FIELDS}
        record = JobRecord(**fields)
        with self._lock:
            missing = [i for i in images if not self._image_exists(i)]
            if missing:
                raise missing_ids("input image(s) do not exist", missing, field="inputs")
            key = (record.owner, record.idempotency_key) if record.idempotency_key else None
            if key is not None and key in self._keys:
                return self._jobs[self._keys[key]], False
            if record.id in self._jobs:
                raise Conflict(f"job {record.id} exists already")
            self._jobs[record.id] = record
            self._tasks[record.id] = {
                idx: _new_task(record, idx, image, now) for idx, image in tasks
            }
            self._events[record.id] = []
            if key is not None:
                self._keys[key] = record.id
            self._event(record.id, "state", {"state": "queued"}, now)
        return record, True

    def find_by_idempotency_key(self, owner: str, key: str) -> JobRecord | None:
        with self._lock:
            job_id = self._keys.get((owner, key))
            return None if job_id is None else self._jobs[job_id]

    def get(self, job_id: str, *, owner: str | None = None) -> JobRecord:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or (owner is not None and job.owner != owner):
            raise NotFound(f"no job {job_id!r}")
        return job

    def tasks(self, job_id: str) -> list[TaskRecord]:
        with self._lock:
            return sorted(self._tasks.get(job_id, {}).values(), key=lambda t: t.idx)

    def task(self, job_id: str, idx: int) -> TaskRecord:
        with self._lock:
            task = self._tasks.get(job_id, {}).get(idx)
        if task is None:
            raise NotFound(f"job {job_id!r} has no task {idx}")
        return task

    def list_jobs(
        self,
        *,
        state: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        after: str | None = None,
        owner: str | None = None,
    ) -> list[JobRecord]:
        with self._lock:
            found = [
                j
                for j in self._jobs.values()
                if (owner is None or j.owner == owner)
                and (not state or j.state == state)
                and (not kind or j.kind == kind)
                and (not after or j.id < after)
            ]
        return sorted(found, key=lambda j: j.id, reverse=True)[:limit]

    def count(self, *, state: str | None = None) -> int:
        with self._lock:
            return sum(not state or j.state == state for j in self._jobs.values())

    def queued_tasks(self, queue: str) -> int:
        with self._lock:
            return sum(t.state == "queued" and t.queue == queue for t in self._all_tasks())

    def queue_stats(self) -> list[tuple[str, str, int, datetime | None]]:
        found: dict[tuple[str, str], list[datetime]] = {}
        with self._lock:
            for t in self._all_tasks():
                if t.state in ("queued", "running"):
                    found.setdefault((t.queue, t.state), []).append(t.created_at)
        return [(q, s, len(times), min(times)) for (q, s), times in sorted(found.items())]

    def events(self, job_id: str, *, after: int = 0, limit: int = 500) -> list[EventRecord]:
        with self._lock:
            return [e for e in self._events.get(job_id, []) if e.id > after][:limit]

    # -- publishing ---------------------------------------------------------------------
    def mark_published(self, job_id: str, idxs: Sequence[int] | None = None) -> None:
        with self._lock:
            for task in list(self._tasks.get(job_id, {}).values()):
                if task.published_at is None and (idxs is None or task.idx in idxs):
                    self._put(replace(task, published_at=_now()))

    def mark_jobs_published(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self.mark_published(job_id)

    def unmark_published(self, refs: Sequence[TaskRef]) -> None:
        with self._lock:
            for ref in refs:
                task = self._tasks.get(ref.job_id, {}).get(ref.idx)
                if task is not None:
                    self._put(replace(task, published_at=None))

    def claim_unpublished(self, *, older_than_s: float, limit: int = 500) -> list[TaskRef]:
        cutoff = _now() - timedelta(seconds=older_than_s)
        with self._lock:
            due = [
                t
                for t in self._all_tasks()
                if t.state == "queued" and t.published_at is None and t.created_at < cutoff
            ][:limit]
            for task in due:
                self._put(replace(task, published_at=_now()))
            return [self._ref(t) for t in due]

    def unfinished(self) -> list[TaskRef]:
        with self._lock:
            return [self._ref(t) for t in self._all_tasks() if t.state in ACTIVE]

    # -- transitions --------------------------------------------------------------------
    def start_task(self, job_id: str, idx: int) -> Started | None:
        now = _now()
        with self._lock:
            job, task = self._find(job_id, idx)
            if job is None or task is None or job.terminal:
                return None
            if not can_move("task", task.state, "running"):
                return None
            started = replace(
                task, state="running", attempts=task.attempts + 1, started_at=task.started_at or now
            )
            self._put(started)
            if can_move("job", job.state, "running"):
                self._jobs[job_id] = replace(job, state="running", started_at=now, updated_at=now)
                self._event(job_id, "state", {"state": "running"}, now)
            if started.attempts > 1:  # a retry or a redelivery is news; a first start is not
                event = {"index": idx, "state": "running", "attempt": started.attempts}
                self._event(job_id, "task", event, now)
        return Started(job, started)

    def progress(self, job_id: str, idx: int, fraction: float, message: str | None) -> None:
        now = _now()
        with self._lock:
            job, task = self._find(job_id, idx)
            if job is None or task is None or job.terminal or task.state != "running":
                return
            self._put(replace(task, progress=fraction, message=message and message[:300]))
            data = {"index": idx, "progress": fraction, "message": message}
            self._event(job_id, "progress", data, now)

    def retry_later(self, job_id: str, idx: int, error: str) -> None:
        now = _now()
        with self._lock:
            job, task = self._find(job_id, idx)
            if job is None or task is None or job.terminal:
                return
            if not can_move("task", task.state, "queued"):
                return
            self._put(replace(task, state="queued", last_error=error[:4000]))
            data = {"index": idx, "state": "retrying", "error": error[:500]}
            self._event(job_id, "task", data, now)

    def finish_task(
        self,
        job_id: str,
        idx: int,
        outcome: Finish,
        *,
        aggregate: Aggregate | None = None,
        started: Started | None = None,
    ) -> JobRecord | None:
        now = _now()
        with self._lock:
            job, task = self._find(job_id, idx)
            if job is None or task is None or task.state not in outcome.sources():
                return None
            state: State = outcome.state
            if job.state == "cancelled" and state == "succeeded":
                state = "cancelled"
            self._put(
                replace(
                    task,
                    state=state,
                    progress=1.0 if state == "succeeded" else task.progress,
                    result_image=outcome.result_image,
                    artifacts=_stored(outcome.artifacts),
                    result=_stored(outcome.result),
                    error=outcome.error and outcome.error[:4000],
                    finished_at=now,
                )
            )
            event: dict[str, Any] = {"index": idx, "state": state}
            if outcome.result_image:
                event["result_image"] = outcome.result_image
            if outcome.error:
                event["error"] = outcome.error[:500]
            self._event(job_id, "task", event, now)
            return self._count(job, state, aggregate, now)

    def _count(
        self, job: JobRecord, state: State, aggregate: Aggregate | None, now: datetime
    ) -> JobRecord:
        """Count one finished task on its job; complete the job after its last task."""
        counted = replace(
            job,
            succeeded=job.succeeded + (state == "succeeded"),
            failed=job.failed + (state == "failed"),
            cancelled=job.cancelled + (state == "cancelled"),
            updated_at=now,
        )
        final = job_outcome(counted.failed, counted.cancelled)
        if counted.done >= job.total and can_move("job", job.state, final):
            tasks = sorted(self._tasks[job.id].values(), key=lambda t: t.idx)
            error = failure_summary(tasks) if final == "failed" else job.error
            result = _stored(aggregate(job, tasks)) if aggregate is not None else job.result
            counted = replace(counted, state=final, finished_at=now, error=error, result=result)
            data: dict[str, Any] = {"state": final}
            if final == "failed":
                data["error"] = error
            self._event(job.id, "state", data, now)
        self._jobs[job.id] = counted
        return counted

    def cancel(self, job_id: str, *, owner: str | None = None) -> tuple[JobRecord, bool]:
        now = _now()
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or (owner is not None and job.owner != owner):
                raise NotFound(f"no job {job_id!r}")
            if not can_move("job", job.state, "cancelled"):
                return job, False
            # running ones too: a late outcome or a redelivery then changes nothing
            live = [t for t in self._tasks[job_id].values() if t.state in ACTIVE]
            for task in live:
                self._put(replace(task, state="cancelled", finished_at=now))
                self._event(job_id, "task", {"index": task.idx, "state": "cancelled"}, now)
            job = replace(
                job,
                state="cancelled",
                cancelled=job.cancelled + len(live),
                finished_at=now,
                updated_at=now,
            )
            self._jobs[job_id] = job
            self._event(job_id, "state", {"state": "cancelled"}, now)
        return job, True

    # -- retention ----------------------------------------------------------------------
    def count_finished(self, *, before: datetime) -> int:
        with self._lock:
            return len(self._finished(before))

    def purge_finished(self, *, before: datetime, limit: int) -> list[PurgedJob]:
        with self._lock:
            purged = []
            for job in self._finished(before)[:limit]:
                tasks = sorted(self._tasks.pop(job.id).values(), key=lambda t: t.idx)
                del self._jobs[job.id], self._events[job.id]
                if job.idempotency_key:
                    self._keys.pop((job.owner, job.idempotency_key), None)
                keys = [
                    a["key"]
                    for t in tasks
                    for a in t.artifacts or ()
                    if isinstance(a, dict) and a.get("key")
                ]
                purged.append(PurgedJob(job.id, keys))
            return purged

    def dispose(self) -> None:
        """Nothing to release: the jobs live as long as the store."""

    # -- helpers (the caller holds the lock) --------------------------------------------
    def _find(self, job_id: str, idx: int) -> tuple[JobRecord | None, TaskRecord | None]:
        return self._jobs.get(job_id), self._tasks.get(job_id, {}).get(idx)

    def _put(self, task: TaskRecord) -> None:
        self._tasks[task.job_id][task.idx] = task

    def _all_tasks(self) -> list[TaskRecord]:
        """Every task, by job id then index."""
        return [
            task
            for job_id in sorted(self._tasks)
            for task in sorted(self._tasks[job_id].values(), key=lambda t: t.idx)
        ]

    def _ref(self, task: TaskRecord) -> TaskRef:
        return TaskRef(task.job_id, task.idx, task.queue, self._jobs[task.job_id].priority)

    def _finished(self, before: datetime) -> list[JobRecord]:
        """Jobs that finished before ``before``, oldest first."""
        done = [
            j
            for j in self._jobs.values()
            if j.state in TERMINAL and j.finished_at is not None and j.finished_at < before
        ]
        return sorted(done, key=lambda j: j.finished_at or before)

    def _event(self, job_id: str, type_: str, data: dict[str, Any], at: datetime) -> None:
        event = EventRecord(next(self._event_ids), job_id, type_, _stored(data), at)
        self._events[job_id].append(event)


def _new_task(job: JobRecord, idx: int, image: str | None, now: datetime) -> TaskRecord:
    nothing_yet: dict[str, Any] = dict.fromkeys(TaskRecord.__dataclass_fields__)
    nothing_yet.update(job_id=job.id, idx=idx, queue=job.queue, input=image, created_at=now)
    return TaskRecord(**nothing_yet | {"state": "queued", "attempts": 0, "progress": 0.0})
