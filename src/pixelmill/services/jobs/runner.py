"""Runs one delivered task: the broker's handler in every worker (and embedded gateway).

The bookkeeping that makes at-least-once delivery safe lives here and in the guarded
transitions of the job store (:mod:`pixelmill.backends.metadata.jobs`):

1. ``start_task`` moves the task to ``running`` only from ``queued``/``running``; a
   delivery of a finished task is acknowledged and dropped.
2. The kind's handler runs under the task's time limit. Results are content-addressed
   images and job/task/name-keyed artifacts, so a second run overwrites the first.
3. ``finish_task`` records the outcome only from ``running``: one outcome, one
   ``succeeded`` transition, whatever number of runs happened.

Before the kind runs, the job's owner must still be an active user who may read the
task's images (``JobDeps.may_run``); otherwise the task fails at once with the reason.
Errors a retry cannot fix (bad input, a missing image, a time limit) fail the task at
once. Anything else is re-raised to the broker, which retries with backoff and finally
dead-letters; :meth:`TaskRunner.dead_letter` then fails the task with the reason.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pixelmill.backends.broker.base import Delivery, TaskMessage
from pixelmill.backends.metadata.jobs import (
    ACTIVE,
    Finish,
    JobRecord,
    Started,
    TaskRecord,
)
from pixelmill.errors import NotFound, PixelmillError
from pixelmill.observability import context, metrics, tracing
from pixelmill.services.jobs import artifacts
from pixelmill.services.jobs.context import (
    Job,
    JobCancelled,
    JobContext,
    StepTimeLimitExceeded,
    Task,
)
from pixelmill.services.jobs.deadline import WATCHDOG, Watchdog

if TYPE_CHECKING:
    from pixelmill.backends.metadata.records import ImageRecord
    from pixelmill.services.jobs.deps import JobDeps
    from pixelmill.services.jobs.kinds import JobKind

log = logging.getLogger("pixelmill.jobs")


def is_permanent(exc: BaseException) -> bool:
    """True for failures a retry cannot fix: our 4xx errors (bad input, not found...)."""
    return isinstance(exc, PixelmillError) and exc.status < 500


def job_view(job: JobRecord) -> Job:
    return Job(
        id=job.id,
        kind=job.kind,
        params=job.params,
        inputs=tuple(job.inputs),
        queue=job.queue,
        priority=job.priority,
        owner=job.owner or None,
        created_at=job.created_at,
    )


class _Host:
    """The worker side of one task run's :class:`JobContext`."""

    def __init__(self, runner: TaskRunner, job: JobRecord, task: TaskRecord) -> None:
        self.runner = runner
        self.job = job
        self.task = task
        self.artifacts: list[dict[str, Any]] = []
        self.image: str | None = None

    def report_progress(self, fraction: float, message: str | None) -> None:
        self.runner.repo.progress(self.job.id, self.task.idx, fraction, message)

    def is_cancelled(self) -> bool:
        return self.runner.repo.get(self.job.id).state == "cancelled"

    def store_artifact(self, name: str, value: Any) -> dict[str, Any]:
        meta = artifacts.store(self.runner.storage, self.job.id, self.task.idx, name, value)
        self.artifacts = [a for a in self.artifacts if a["name"] != name] + [meta]
        return meta

    def save_state(self, name: str, data: bytes) -> None:
        key = artifacts.state_key(self.job.id, self.task.idx, name)
        self.runner.storage.put(key, data, content_type="application/octet-stream")

    def load_state(self, name: str) -> bytes | None:
        try:
            return self.runner.storage.get(artifacts.state_key(self.job.id, self.task.idx, name))
        except NotFound:
            return None

    def store_image(self, data: bytes, filename: str | None) -> ImageRecord:
        record, _created = self.runner.images.ingest_bytes(
            data, filename=filename, source="job", job_id=self.job.id, owner_id=self.job.owner
        )
        self.image = record.id
        return record

    def time_limit(self, step: str, seconds: float | None) -> Any:
        limit = seconds or self.runner.settings.step_time_limit_s
        return self.runner.watchdog.limit(step, limit)


class TaskRunner:
    def __init__(self, deps: JobDeps, *, watchdog: Watchdog = WATCHDOG) -> None:
        self.repo = deps.store
        self.kinds = deps.kinds
        self.storage = deps.storage
        self.images = deps.images
        self.settings = deps.settings
        self.watchdog = watchdog
        self.finished = deps.finished
        self.may_run = deps.may_run
        policy = deps.broker.policy
        # a backstop for brokers without a delivery limit (in-process, after restarts):
        # a task started this often has crashed its worker every time
        self.max_attempts = policy.max_retries + policy.delivery_limit + 1

    # -- broker callbacks ---------------------------------------------------------------
    def handle(self, delivery: Delivery) -> None:
        """Run one delivered task: its log lines carry the job and task ids, its span
        continues the submitter's trace, and the worker's USE metrics count it."""
        msg = delivery.message
        queue = delivery.queue
        in_flight = metrics.WORKER_IN_FLIGHT.labels(queue)
        in_flight.inc()
        began = time.perf_counter()
        try:
            with (
                context.job_scope(msg.job_id, msg.idx),
                tracing.continued(msg.trace),
                tracing.consumer_span(
                    f"process {queue}",
                    {
                        "messaging.system": "pixelmill",
                        "messaging.destination.name": queue,
                        "pixelmill.job_id": msg.job_id,
                        "pixelmill.task_index": msg.idx,
                        "pixelmill.retries": delivery.retries,
                    },
                ),
            ):
                self._handle(delivery)
        finally:
            in_flight.dec()
            metrics.WORKER_BUSY_SECONDS.labels(queue).inc(time.perf_counter() - began)

    def _handle(self, delivery: Delivery) -> None:
        msg = delivery.message
        started = self.repo.start_task(msg.job_id, msg.idx)
        if started is None:
            metrics.TASKS_RUN.labels(delivery.queue, "duplicate").inc()
            return
        job, task = started.job, started.task
        if task.attempts == 1 and task.created_at is not None:
            wait = (datetime.now(UTC) - task.created_at).total_seconds()
            metrics.TASK_WAIT_SECONDS.labels(job.queue).observe(max(wait, 0.0))
        if task.attempts > self.max_attempts:
            self._ended(
                self._finish(
                    job,
                    task,
                    Finish(
                        "failed",
                        error=f"gave up after {task.attempts - 1} attempts; the last ones never "
                        f"finished (the worker died while running it): {task.last_error or ''}".strip(),
                    ),
                )
            )
            return
        kind = self.kinds.get(job.kind)
        host = _Host(self, job, task)
        ctx = JobContext(
            job=job_view(job), task=Task(task.idx, task.input, task.attempts), host=host
        )
        began = time.perf_counter()
        try:
            self._check_rights(job, task, kind)  # before anything is read or written
            with self.watchdog.limit("task", job.time_limit_s):
                result = kind.run(ctx.job, ctx)
        except JobCancelled:
            ended = self._finish(job, task, Finish("cancelled"), kind)
            outcome = "cancelled"
        except StepTimeLimitExceeded as exc:
            ended = self._finish(job, task, Finish("failed", error=f"time limit: {exc}"), kind)
            outcome = "timeout"
        except Exception as exc:
            if not is_permanent(exc):
                # on the last attempt the broker dead-letters it: no "retrying" event
                # then, the dead letter's "failed" one is the task's last word
                last = delivery.last_attempt
                metrics.TASKS_RUN.labels(job.queue, "failed" if last else "retry").inc()
                if not last:
                    self._note_retry(job, task, exc)
                raise
            detail = exc.detail if isinstance(exc, PixelmillError) else str(exc)
            ended = self._finish(job, task, Finish("failed", error=detail), kind)
            outcome = "failed"
        else:
            ended = self._finish(
                job,
                task,
                Finish(
                    "succeeded",
                    result_image=host.image,
                    artifacts=host.artifacts or None,
                    result=result,
                ),
                kind,
            )
            outcome = "succeeded"
        metrics.TASK_SECONDS.labels(job.queue).observe(time.perf_counter() - began)
        metrics.TASKS_RUN.labels(job.queue, outcome).inc()
        self._ended(ended)

    def dead_letter(self, message: TaskMessage, reason: str) -> None:
        """The broker gave up on a task: fail it (and maybe its job) with the reason."""
        try:
            job = self.repo.get(message.job_id)
        except PixelmillError as exc:
            if exc.status == 404:
                return
            raise
        task = self.repo.task(message.job_id, message.idx)
        detail = reason
        if task.last_error and task.last_error not in reason:
            detail = f"{reason} (last error: {task.last_error})"
        metrics.DEAD_LETTERS.labels(job.queue).inc()
        log.warning("task %s/%s dead-lettered: %s", message.job_id, message.idx, detail)
        self._ended(
            self._finish(
                job,
                task,
                Finish("failed", error=f"dead-lettered: {detail}", from_states=ACTIVE),
            )
        )

    # -- helpers ------------------------------------------------------------------------
    def _check_rights(self, job: JobRecord, task: TaskRecord, kind: JobKind) -> None:
        """Raise (403, failing the task) when the job's owner may no longer have this task
        run: rights checked at submit may have changed while it was queued."""
        if self.may_run is None or not job.owner:
            return
        images = [task.input] if task.input is not None else list(job.inputs)
        if kind.images_read is not None:  # a watermark, a stain reference...
            images += kind.images_read(kind.parse_params(job.params))
        self.may_run(job.owner, job.id, images)

    def _finish(
        self, job: JobRecord, task: TaskRecord, outcome: Finish, kind: JobKind | None = None
    ) -> JobRecord | None:
        """Record the task's outcome; the job when this ended it."""
        kind = kind or self.kinds.get(job.kind)
        updated = self.repo.finish_task(
            job.id,
            task.idx,
            outcome,
            aggregate=lambda j, ts: _aggregate(kind, j, ts),
            started=Started(job, task),
        )
        if updated is not None and updated.terminal and job.state != updated.state:
            metrics.JOBS_FINISHED.labels(job.kind, updated.state).inc()
            return updated
        return None

    def _ended(self, job: JobRecord | None) -> None:
        # after the task's metrics: what follows a job's end comes last
        if job is not None:
            self.finished.publish(job)

    def _note_retry(self, job: JobRecord, task: TaskRecord, exc: Exception) -> None:
        log.warning("task %s/%s failed, will retry: %s", job.id, task.idx, exc)
        # the DB may be why it failed; the broker retries regardless
        with contextlib.suppress(PixelmillError):
            self.repo.retry_later(job.id, task.idx, f"{type(exc).__name__}: {exc}")


def _aggregate(kind: JobKind, job: JobRecord, tasks: list[TaskRecord]) -> Any:
    results = [t.result for t in tasks]
    if kind.aggregate is not None:
        return kind.aggregate(job_view(job), results)
    return results[0] if len(results) == 1 else results
