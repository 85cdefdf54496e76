"""Job kinds: the extension point of the async job system.

A *job kind* says what a job does. The built-in kind ``pipeline`` runs a pipeline of
steps from the operation registry on each input image (one task per image) and
aggregates the results; ``train`` trains a model. A kind that needs services gets them
as arguments of the function that builds it, and the composition root
(``pixelmill.runtime.container``) builds it once and hands it to :class:`JobKinds`::

    from pydantic import BaseModel
    from pixelmill.services.jobs import Job, JobContext, JobKind, SubmitContext

    class TrainParams(BaseModel, extra="forbid"):
        dataset: str
        epochs: int = 10

    def train_kind(trainer: TrainerService) -> JobKind:
        def check(params: TrainParams, submit: SubmitContext) -> None:
            trainer.check(params.dataset)      # submit-time checks; raise 4xx errors

        def run(job: Job, ctx: JobContext) -> dict[str, object]:
            params = TrainParams.model_validate(job.params)
            for epoch in range(params.epochs):
                ctx.raise_if_cancelled()           # stop promptly after POST .../cancel
                with ctx.step("epoch", time_limit_s=600):   # a per-step time limit
                    loss = trainer.epoch(...)
                ctx.progress((epoch + 1) / params.epochs, f"epoch {epoch + 1}: {loss:.3f}")
            ctx.put_artifact("history", [{"epoch": 1, "loss": 0.3}])  # GET .../results/history
            return {"model": "unet:3"}                                 # the job's ``result``

        return JobKind(name="train", params=TrainParams, queue="train", run=run,
                       validate=check, time_limit_s=6 * 3600, max_retries=1)

A kind that needs nothing but its :class:`JobContext` can live in a plugin module
listed in the ``jobs.plugins`` setting, which calls :func:`register_kind` when imported.
Users then submit ``POST /v1/jobs {"kind": "train", "params": {...}}`` and services
call :meth:`pixelmill.services.jobs.JobService.submit` directly.

Contract for ``run(job, ctx)``:

* It runs on a worker of the kind's queue, possibly **more than once** (delivery is
  at-least-once: a killed worker's task is redelivered). Make it idempotent: derive
  names from ``job.id``/``ctx.task.index``; store images with :meth:`JobContext.put_image`
  (content-addressed) and tables/JSON with :meth:`JobContext.put_artifact` (keyed by
  job, task and name), so a re-run overwrites rather than duplicates.
* Return a JSON-able value (or ``None``): it becomes the task's (and, for single-task
  kinds, the job's) ``result``.
* Raise an :class:`~pixelmill.errors.InvalidInput`/:class:`~pixelmill.errors.NotFound`
  subclass for a failure that a retry cannot fix: the task fails at once with that
  reason. Any other exception (a backend down, a bug) is retried with exponential
  backoff and, when retries are exhausted, dead-lettered and the job fails with the reason.
* Import heavy libraries (torch, cv2, ...) inside ``run``: this module is imported by
  the gateway to validate submissions.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.ops import validation_errors
from pixelmill.queues import QUEUES, Queue

if TYPE_CHECKING:
    from pixelmill.services.jobs.context import Job, JobContext, SubmitContext

#: How a kind's job is split into tasks: one task for the whole job, or one per input.
FanOut = Literal["single", "per_input"]


@dataclass(frozen=True)
class JobKind:
    """What a job of one kind does, and how it is checked, queued and run.

    ``params`` validates the request's ``params`` object at submit time (422 on error);
    ``validate`` (optional) adds checks that need the services, raising 4xx errors.
    ``queue`` is the worker queue, fixed or computed from the validated params.
    ``fan_out="per_input"`` makes one task per input image (``ctx.task.input``);
    ``"single"`` makes one task for the whole job (inputs in ``job.inputs``).
    ``min_inputs``/``max_inputs`` bound ``inputs`` (``max_inputs=None``: the
    configured batch limit). ``time_limit_s`` bounds one task run (``None``: derived
    from the settings' per-step limit); ``max_retries`` overrides the broker default.
    ``aggregate`` turns the task results of a finished job into the job's ``result``
    (default: the single task's result, or the list of task results).
    ``images_read`` lists the other stored images the params name (a watermark, a stain
    reference): submitting checks them with the submitter's access, like the inputs.
    """

    name: str
    run: Callable[[Job, JobContext], Any]
    params: type[BaseModel]
    queue: Queue | Callable[[Any], Queue] = "transform"
    validate: Callable[[Any, SubmitContext], None] | None = None
    fan_out: FanOut = "single"
    min_inputs: int = 0
    max_inputs: int | None = None
    time_limit_s: float | None = None
    max_retries: int | None = None
    aggregate: Callable[[Job, list[Any]], Any] | None = None
    summary: str = ""
    images_read: Callable[[Any], list[str]] | None = None

    def parse_params(self, raw: Mapping[str, Any] | None) -> BaseModel:
        """Validate raw params into the kind's model, or raise InvalidParameter (422)."""
        try:
            return self.params.model_validate(dict(raw or {}))
        except ValidationError as exc:
            raise InvalidParameter(
                f"invalid parameters for a {self.name!r} job",
                errors=validation_errors(exc, prefix="params."),
            ) from None

    def queue_for(self, params: BaseModel) -> Queue:
        queue = self.queue(params) if callable(self.queue) else self.queue
        if queue not in QUEUES:
            raise ValueError(f"job kind {self.name!r} chose unknown queue {queue!r}")
        return queue


_plugin_kinds: dict[str, JobKind] = {}
_lock = threading.Lock()
_loaded: set[str] = set()


def register_kind(kind: JobKind) -> JobKind:
    """Add a plugin's ``kind`` (a module listed in the ``jobs.plugins`` setting calls this
    when imported); registering the same name twice is an error unless it is the very
    same object (module re-import). Kinds that need services are built by the
    composition root instead and handed to :class:`JobKinds`."""
    with _lock:
        existing = _plugin_kinds.get(kind.name)
        if existing is not None and existing is not kind and existing.run is not kind.run:
            raise ValueError(f"job kind {kind.name!r} is registered twice")
        _plugin_kinds[kind.name] = kind
    return kind


def load_plugins(modules: Sequence[str] = ()) -> None:
    """Import the plugin modules (each registers its kinds with :func:`register_kind`)."""
    for module in modules:
        if module not in _loaded:
            importlib.import_module(module)
            _loaded.add(module)


class JobKinds:
    """The job kinds one process knows: the built-in ones, built by the composition
    root with their collaborators, plus those of the ``jobs.plugins`` modules."""

    def __init__(self, kinds: Iterable[JobKind] = (), *, plugins: Sequence[str] = ()) -> None:
        self._kinds = {kind.name: kind for kind in kinds}
        load_plugins(plugins)

    def get(self, name: str) -> JobKind:
        """The kind called ``name``; 422 (InvalidParameter) for an unknown one."""
        kind = self._kinds.get(name) or _plugin_kinds.get(name)
        if kind is None:
            raise InvalidParameter(f"unknown job kind {name!r}", known=self.names())
        return kind

    def names(self) -> list[str]:
        return sorted({*self._kinds, *_plugin_kinds})

    def catalogue(self) -> list[dict[str, Any]]:
        """Every job kind with its summary, queue (when fixed) and params schema."""
        return [
            {
                "name": k.name,
                "summary": k.summary,
                "queue": k.queue if isinstance(k.queue, str) else "depends on params",
                "fan_out": k.fan_out,
                "params": k.params.model_json_schema(),
            }
            for k in (self.get(n) for n in self.names())
        ]
