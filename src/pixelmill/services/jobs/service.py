"""The job service: submit, read, cancel and watch jobs (the API side).

Used by the gateway routes and by other services. Running tasks is the job daemon's
work (:mod:`pixelmill.services.jobs.daemon`), started only in processes that run jobs.
Submitting validates everything checkable up front (kind, params, inputs, batch size),
refuses work above the configured queue depth (503 + Retry-After), writes the job and
its tasks to the DB (the durable record) and only then publishes one message per task.
A publish that fails leaves the task marked unpublished; workers re-publish those
(:meth:`JobDaemon.republish_unpublished`), and an in-process broker gets every
unfinished task back at start (:meth:`JobDaemon.recover`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
from cachetools import LRUCache
from pydantic import BaseModel

from pixelmill.backends.broker.base import TaskMessage
from pixelmill.backends.metadata.jobs import (
    EventRecord,
    JobRecord,
    TaskRecord,
    TaskRef,
    new_job_id,
)
from pixelmill.errors import (
    BackendUnavailable,
    Conflict,
    InvalidParameter,
    NotFound,
    Overloaded,
    missing_ids,
)
from pixelmill.observability import metrics, tracing
from pixelmill.queues import QUEUES
from pixelmill.services.jobs import artifacts
from pixelmill.services.jobs.context import SubmitContext

if TYPE_CHECKING:
    from pixelmill.backends.metadata.records import ImageRecord
    from pixelmill.services.jobs.deps import JobDeps
    from pixelmill.services.jobs.kinds import JobKind

log = logging.getLogger("pixelmill.jobs")

#: how long a queue depth read is reused by the backpressure check (seconds)
DEPTH_TTL_S = 1.0
#: validated params kept per process for resubmits of the same pipeline
PARSED_CACHE_SIZE = 256
PRIORITY_RANGE = range(0, 10)


def request_hash(kind: str, params: Any, inputs: Sequence[str], priority: int) -> str:
    body = orjson.dumps(
        {"kind": kind, "params": params, "inputs": list(inputs), "priority": priority},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(body).hexdigest()


class JobService:
    """Submit, read, cancel and watch jobs; the API of the job system."""

    def __init__(self, deps: JobDeps) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.broker = deps.broker
        self.kinds = deps.kinds
        #: news about jobs for event streams (notifications on PostgreSQL)
        self.changes = deps.changes
        self.repo = deps.store
        self._depth: dict[str, tuple[float, int]] = {}
        self._stop = threading.Event()
        self._marks: list[str] = []
        self._marks_lock = threading.Lock()
        self._marker: threading.Thread | None = None
        self._parsed: LRUCache[tuple[str, bytes], tuple[BaseModel, str, dict[str, Any]]] = LRUCache(
            maxsize=PARSED_CACHE_SIZE
        )
        self._parsed_lock = threading.Lock()
        metrics.queues_known(QUEUES)

    # -- submit -------------------------------------------------------------------------
    def submit(
        self,
        *,
        kind: str = "pipeline",
        params: dict[str, Any] | None = None,
        inputs: Sequence[str] = (),
        priority: int = 0,
        idempotency_key: str | None = None,
        owner: str | None = None,
        can_read: Callable[[str], object] | None = None,
    ) -> tuple[JobRecord, bool]:
        """Validate and accept a job; returns ``(job, created)``. With an idempotency
        key already used by ``owner`` for the same request, the existing job comes back
        (``created=False``); for a different request it is a 409. ``can_read`` raises
        ``NotFound`` for an input image the submitter may not read (422), or for another
        image the params name, a watermark's or a stain reference (404, as for an unknown
        id); ``deps.admit`` may refuse ``owner`` another job (429, the concurrent-jobs
        quota)."""
        with tracing.span("job.submit", {"pixelmill.job_kind": kind}):
            job_kind = self.kinds.get(kind)
            if can_read is not None:
                self._check_readable(list(inputs), can_read)
            if priority not in PRIORITY_RANGE:
                raise InvalidParameter("priority is an integer from 0 (normal) to 9 (highest)")
            parsed, queue, normalised = self._parse(job_kind, params)
            if can_read is not None and job_kind.images_read is not None:
                for image_id in job_kind.images_read(parsed):  # 404 as for an unknown id
                    can_read(image_id)
            inputs = list(inputs)
            self._check_inputs(job_kind.name, inputs, job_kind.min_inputs, job_kind.max_inputs)
            submitted = SubmitContext(partial(self._input_records, inputs), owner)
            if job_kind.validate is not None:
                job_kind.validate(parsed, submitted)
            digest = request_hash(job_kind.name, normalised, inputs, priority)
            if idempotency_key:
                existing = self.repo.find_by_idempotency_key(owner or "", idempotency_key)
                if existing is not None:
                    return self._same_request(existing, digest), False
            if owner and self.deps.admit is not None:
                self.deps.admit(owner)
            tasks: list[tuple[int, str | None]] = (
                list(enumerate(inputs)) if job_kind.fan_out == "per_input" else [(0, None)]
            )
            self._check_capacity(queue, len(tasks))
            policy_retries = job_kind.max_retries
            job, created = self.repo.create(
                {
                    "id": new_job_id(),
                    "kind": job_kind.name,
                    "queue": queue,
                    "priority": priority,
                    "params": normalised,
                    "inputs": inputs,
                    "owner": owner or "",
                    "idempotency_key": idempotency_key,
                    "request_hash": digest,
                    "time_limit_s": job_kind.time_limit_s or self.settings.task_time_limit_s,
                    "max_retries": (
                        policy_retries
                        if policy_retries is not None
                        else self.broker.policy.max_retries
                    ),
                },
                tasks,
                # checked in the insert's own transaction (unless a kind's validate read them)
                images=() if submitted.loaded else inputs,
            )
            if not created:  # lost an idempotency race to a concurrent identical submit
                return self._same_request(job, digest), False
            metrics.JOBS_SUBMITTED.labels(job.kind, queue).inc()
            self._publish(job, [TaskRef(job.id, idx, queue, priority) for idx, _ in tasks])
            return job, True

    def _parse(
        self, job_kind: JobKind, params: dict[str, Any] | None
    ) -> tuple[BaseModel, str, dict[str, Any]]:
        """The kind's validated params, their queue and their normalised JSON.

        Clients tend to submit the same pipeline again and again; validating it (every
        step's pydantic model, twice: params and queue) was a tenth of a submit's CPU.
        Frozen params models are immutable, so a parse is reused for equal raw params."""
        key = None
        if job_kind.params.model_config.get("frozen"):
            try:
                key = (job_kind.name, orjson.dumps(params, option=orjson.OPT_SORT_KEYS))
            except TypeError:  # not JSON: no caching, validation will say why
                key = None
        if key is not None:
            with self._parsed_lock:
                hit = self._parsed.get(key)
            if hit is not None:
                return hit
        parsed = job_kind.parse_params(params)
        result = (parsed, job_kind.queue_for(parsed), parsed.model_dump(mode="json"))
        if key is not None:
            with self._parsed_lock:
                self._parsed[key] = result
        return result

    def _same_request(self, existing: JobRecord, digest: str) -> JobRecord:
        if existing.request_hash != digest:
            raise Conflict(
                "this idempotency key was used for a different request",
                job=existing.id,
            )
        return existing

    def _check_inputs(self, kind: str, inputs: list[str], least: int, most: int | None) -> None:
        limit = min(most or self.settings.max_inputs, self.settings.max_inputs)
        if len(inputs) < least:
            raise InvalidParameter(
                f"a {kind!r} job needs at least {least} input image(s)", field="inputs"
            )
        if len(inputs) > limit:
            raise InvalidParameter(
                f"a {kind!r} job takes at most {limit} input images; got {len(inputs)}",
                field="inputs",
                max_inputs=limit,
            )
        if not all(isinstance(i, str) and 0 < len(i) <= 64 for i in inputs):
            raise InvalidParameter("inputs are image ids (strings)", field="inputs")
        if len(set(inputs)) != len(inputs):
            raise InvalidParameter("inputs contain the same image more than once", field="inputs")

    @staticmethod
    def _check_readable(inputs: list[str], can_read: Callable[[str], object]) -> None:
        """422 for inputs the submitter may not read, worded like missing ones: whether
        someone else's image exists is not for them to learn."""
        missing: list[str] = []
        for image_id in dict.fromkeys(inputs):
            try:
                can_read(image_id)
            except NotFound:
                missing.append(image_id)
        if missing:
            raise missing_ids("input image(s) do not exist", missing, field="inputs")

    def _input_records(self, inputs: list[str]) -> list[ImageRecord]:
        """The input images' records, for a kind's ``validate`` (422 if one is missing)."""
        records: list[ImageRecord] = []
        missing: list[str] = []
        for image_id in inputs:
            try:
                records.append(self.deps.images.images.get(image_id))
            except NotFound:
                missing.append(image_id)
        if missing:
            raise missing_ids("input image(s) do not exist", missing, field="inputs")
        return records

    def _check_capacity(self, queue: str, adding: int) -> None:
        """422 for a job that could never fit the queue, even empty (retrying cannot
        help); 503 with Retry-After while the queue is too full for it right now."""
        limit = self.settings.max_queued_tasks
        if adding > limit:
            metrics.JOBS_REJECTED.labels(queue).inc()
            raise InvalidParameter(
                f"this job has {adding} tasks, more than the {queue!r} queue ever holds "
                f"(jobs.max_queued_tasks: {limit}); submit it as jobs of at most {limit} "
                "inputs each",
                field="inputs",
                max_queued_tasks=limit,
                queue=queue,
            )
        now = time.monotonic()
        seen_at, depth = self._depth.get(queue, (0.0, 0))
        if now - seen_at > DEPTH_TTL_S:
            depth = self.repo.queued_tasks(queue)
            self._depth[queue] = (now, depth)
            metrics.TASKS_QUEUED.labels(queue).set(depth)
        if depth + adding > self.settings.max_queued_tasks:
            metrics.JOBS_REJECTED.labels(queue).inc()
            raise Overloaded(
                f"the {queue!r} queue holds {depth} waiting tasks (limit "
                f"{self.settings.max_queued_tasks}); retry later",
                retry_after=self.settings.retry_after_s,
                queue=queue,
            )
        self._depth[queue] = (seen_at if now - seen_at <= DEPTH_TTL_S else now, depth + adding)

    def _publish(self, job: JobRecord, refs: Sequence[TaskRef]) -> None:
        published: list[int] = []
        try:
            for ref in refs:
                attributes = {"messaging.destination.name": ref.queue, "pixelmill.job_id": job.id}
                with tracing.producer_span(f"publish {ref.queue}", attributes):
                    self.broker.publish(
                        ref.queue,
                        TaskMessage(ref.job_id, ref.idx, trace=tracing.inject()),
                        priority=ref.priority,
                        max_retries=job.max_retries,
                    )
                published.append(ref.idx)
        except BackendUnavailable as exc:
            # accepted all the same: the DB has the job, a worker re-publishes it
            log.warning("job %s: publish failed, left for re-publishing: %s", job.id, exc)
        if not published or not self.broker.durable:
            return
        if len(published) < len(refs):
            self.repo.mark_published(job.id, published)
            return
        # batched off the request path: a mark lost to a crash only means a harmless
        # duplicate publish by the sweeper, long after this flush (republish_after_s)
        with self._marks_lock:
            self._marks.append(job.id)
            if self._marker is None or not self._marker.is_alive():
                self._marker = threading.Thread(
                    target=self._flush_marks_loop, name="pm-publish-marks", daemon=True
                )
                self._marker.start()

    def _flush_marks_loop(self) -> None:
        while not self._stop.wait(0.1):
            self.flush_marks()

    def flush_marks(self) -> None:
        with self._marks_lock:
            batch, self._marks = self._marks, []
        for start in range(0, len(batch), 500):
            try:
                self.repo.mark_jobs_published(batch[start : start + 500])
            except Exception as exc:
                log.warning("could not mark %d job(s) published: %s", len(batch), exc)

    # -- read ---------------------------------------------------------------------------
    # ``owner`` scopes a call to the jobs one API key submitted (a non-admin caller):
    # another key's job is NotFound, like an unknown id. ``None``: every job.
    def get(self, job_id: str, *, owner: str | None = None) -> JobRecord:
        return self.repo.get(job_id, owner=owner)

    def tasks(self, job_id: str) -> list[TaskRecord]:
        return self.repo.tasks(job_id)

    def list_jobs(self, **filters: Any) -> list[JobRecord]:
        return self.repo.list_jobs(**filters)

    def events(self, job_id: str, after: int = 0) -> list[EventRecord]:
        return self.repo.events(job_id, after=after)

    def cancel(self, job_id: str, *, owner: str | None = None) -> JobRecord:
        job, changed = self.repo.cancel(job_id, owner=owner)
        if not changed and job.state != "cancelled":
            raise Conflict(
                f"job {job_id} already {job.state}; it cannot be cancelled", state=job.state
            )
        if changed:
            metrics.JOBS_FINISHED.labels(job.kind, "cancelled").inc()
            self.deps.finished.publish(job)
        return job

    def artifact_names(self, tasks: Sequence[TaskRecord]) -> list[str]:
        names: dict[str, None] = {}
        for task in tasks:
            names.update(dict.fromkeys(a["name"] for a in task.artifacts or []))
        return list(names)

    def artifact(
        self,
        job_id: str,
        name: str,
        fmt: artifacts.Format | None,
        idx: int | None = None,
        *,
        owner: str | None = None,
    ) -> artifacts.Artifact:
        """An artifact of one task, or aggregated over the job's tasks."""
        artifacts.check_name(name)
        storage = self.deps.storage
        if idx is not None:
            if owner is not None:
                self.repo.get(job_id, owner=owner)
            task = self.repo.task(job_id, idx)
            value, kind = artifacts.task_artifact(storage, task.artifacts, name)
        else:
            self.repo.get(job_id, owner=owner)
            tasks = self.repo.tasks(job_id)
            value, kind = artifacts.aggregate(
                storage, [(t.input, t.artifacts) for t in tasks if t.state == "succeeded"], name
            )
        return artifacts.render(value, kind, fmt)

    def saved_state(
        self, job_id: str, name: str, idx: int = 0, *, owner: str | None = None
    ) -> bytes | None:
        """The resumable state ``name`` a task's handler saved last (``None``: none yet);
        readable while the task runs, unlike its artifacts."""
        self.repo.get(job_id, owner=owner)
        try:
            return self.deps.storage.get(artifacts.state_key(job_id, idx, name))
        except NotFound:
            return None

    # -- lifecycle ----------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the publish-marks flusher (marks still pending are flushed by close)."""
        self._stop.set()

    def close(self) -> None:
        """Flush pending publish marks. The backends are closed by their owner, the
        composition root."""
        self.stop()
        self.flush_marks()
        self.deps.finished.close()
