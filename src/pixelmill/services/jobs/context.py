"""What a job kind's handler sees: the job, its task, and a context to report through.

The worker builds a :class:`JobContext` per task run; handlers never touch the broker
or the job tables themselves, so the at-least-once, guarded-transition bookkeeping stays
in one place (:mod:`pixelmill.services.jobs.runner`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pixelmill.observability import tracing

if TYPE_CHECKING:
    from pixelmill.backends.metadata.records import ImageRecord


class JobCancelled(Exception):
    """Raised by :meth:`JobContext.raise_if_cancelled`; the worker records the task as
    cancelled. Handlers may catch it to clean up, then re-raise."""


class StepTimeLimitExceeded(BaseException):
    """Raised inside a task's thread when a step outlives its time limit.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that a handler's broad
    ``except Exception`` cannot swallow it. Time limits are checked between Python
    bytecodes: a long C call (one libvips or torch kernel) finishes before it lands.
    """

    def __init__(self, step: str = "step", limit_s: float = 0.0) -> None:
        super().__init__(f"{step} exceeded its time limit of {limit_s:g} s")
        self.step = step
        self.limit_s = limit_s


@dataclass(frozen=True)
class Job:
    """A read-only view of a job, as validated at submit time."""

    id: str
    kind: str
    params: dict[str, Any]
    inputs: tuple[str, ...]
    queue: str
    priority: int
    owner: str | None
    created_at: datetime


@dataclass(frozen=True)
class Task:
    """One unit of work of a job: ``input`` is the image id for per-input kinds."""

    index: int
    input: str | None
    attempt: int


class SubmitContext:
    """Given to a kind's ``validate`` at submit time (in the gateway process).

    ``inputs`` (the input images' records; 422 when one is missing) are read from the
    database when a ``validate`` first asks for them, so a kind that checks inputs only
    for some params (a pipeline with a ``region``) costs other submits nothing."""

    def __init__(self, inputs: Callable[[], list[ImageRecord]], owner: str | None) -> None:
        self._load = inputs
        self._inputs: list[ImageRecord] | None = None
        self.owner = owner

    @property
    def inputs(self) -> list[ImageRecord]:
        if self._inputs is None:
            self._inputs = self._load()
        return self._inputs

    @property
    def loaded(self) -> bool:
        """Whether ``inputs`` were read (and so checked to exist)."""
        return self._inputs is not None


class TaskHost(Protocol):
    """The worker side of a :class:`JobContext` (implemented by the runner)."""

    def report_progress(self, fraction: float, message: str | None) -> None: ...

    def is_cancelled(self) -> bool: ...

    def store_artifact(self, name: str, value: Any) -> dict[str, Any]: ...

    def store_image(self, data: bytes, filename: str | None) -> ImageRecord: ...

    def save_state(self, name: str, data: bytes) -> None: ...

    def load_state(self, name: str) -> bytes | None: ...

    def time_limit(self, step: str, seconds: float | None) -> Any:
        """A context manager arming a per-step deadline for the calling thread."""


@dataclass
class JobContext:
    """Handed to ``JobKind.run(job, ctx)`` for one run of one task."""

    job: Job
    task: Task
    host: TaskHost
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("pixelmill.jobs"))
    # both start "now": the task was just started from a live job, and a task shorter
    # than the intervals below costs no progress or cancellation round trips
    _progress_at: float = field(default_factory=time.monotonic)
    _cancel_checked_at: float = field(default_factory=time.monotonic)
    _cancelled: bool = False

    #: progress updates closer together than this are coalesced (seconds)
    PROGRESS_INTERVAL_S = 0.5
    #: how long a cancellation check result is reused (seconds)
    CANCEL_CHECK_INTERVAL_S = 0.5

    def progress(self, fraction: float, message: str | None = None, *, force: bool = False) -> None:
        """Report this task's progress, ``fraction`` in [0, 1]; shows in
        ``GET /v1/jobs/{id}`` and as an SSE ``progress`` event. Cheap to call often."""
        now = time.monotonic()
        if not force and now - self._progress_at < self.PROGRESS_INTERVAL_S:
            return
        self._progress_at = now
        self.host.report_progress(min(max(float(fraction), 0.0), 1.0), message)

    def cancelled(self, *, fresh: bool = False) -> bool:
        """True once the job was cancelled (checked against the DB at most every 0.5 s,
        or now when ``fresh``: before a step that cannot be undone)."""
        if self._cancelled:
            return True
        now = time.monotonic()
        if fresh or now - self._cancel_checked_at >= self.CANCEL_CHECK_INTERVAL_S:
            self._cancel_checked_at = now
            self._cancelled = self.host.is_cancelled()
        return self._cancelled

    def raise_if_cancelled(self, *, fresh: bool = False) -> None:
        if self.cancelled(fresh=fresh):
            raise JobCancelled(f"job {self.job.id} was cancelled")

    @contextmanager
    def step(self, name: str, *, time_limit_s: float | None = None) -> Iterator[None]:
        """Run a block as a named step with its own time limit (default: the
        configured per-step limit). Exceeding it fails the task (not retried)."""
        with tracing.span(f"job.step {name}"), self.host.time_limit(name, time_limit_s):
            yield

    def put_artifact(self, name: str, value: Any) -> dict[str, Any]:
        """Store a table/JSON result under ``name`` for this task (overwrites on re-run).

        ``value``: JSON-able data (dict, list of records, numbers, strings), a
        ``pyarrow.Table`` or ``bytes``. Served at ``GET /v1/jobs/{id}/results/{name}``
        (aggregated over the job's tasks) and ``.../tasks/{index}/results/{name}``.
        """
        with tracing.span("job.artifact.write", {"pixelmill.artifact": name}):
            return self.host.store_artifact(name, value)

    def save_state(self, name: str, data: bytes) -> None:
        """Keep ``data`` as this task's resumable state ``name`` (overwritten each call;
        written atomically to object storage, so it survives a killed worker). A long
        task saves its progress here and, on a redelivery, continues from
        :meth:`load_state` instead of starting over."""
        self.host.save_state(name, data)

    def load_state(self, name: str) -> bytes | None:
        """The state an earlier run of this task saved under ``name``, or None."""
        return self.host.load_state(name)

    def put_image(self, data: bytes, *, filename: str | None = None) -> ImageRecord:
        """Store encoded image bytes as a result image (content-addressed, so a re-run
        yields the same id); it is then served like any upload at ``/v1/images/{id}``."""
        with tracing.span("job.result_image.write", {"pixelmill.bytes": len(data)}):
            return self.host.store_image(data, filename)
