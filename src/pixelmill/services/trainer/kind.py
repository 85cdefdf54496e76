"""The ``train`` job kind: training runs as jobs on the ``train`` queue.

Submit ``POST /v1/jobs {"kind": "train", "params": {"model": "nuclei", "dataset":
"<dataset id>", "spec": {...}}}``. The spec and dataset are checked at submit time
(4xx); the handler reports epoch / loss / metrics / ETA as progress events, honours
cancellation between optimizer steps, stores the history as the ``history`` artifact,
and returns the registered version. At-least-once delivery: a re-run of a job that
already registered its version returns that version instead of training again, and a
run whose worker died mid-training (redelivered) resumes after the last finished epoch
from the task's saved training state instead of starting over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from pixelmill.services.jobs import JobCancelled, JobKind

if TYPE_CHECKING:
    from pixelmill.services.jobs import Job, JobContext, SubmitContext
    from pixelmill.services.trainer.service import TrainerService


#: the saved state holding the per-epoch history of a running training job
HISTORY = "history"


class TrainParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Model name; the run registers its next version.")
    dataset: str = Field(description="Dataset id (POST /v1/datasets).")
    spec: dict[str, Any] = Field(default_factory=dict, description="TrainSpec fields.")
    alias: str | None = Field(None, description="Point this alias at the new version.")


def train_kind(trainer: TrainerService) -> JobKind:
    """The ``train`` kind, training with ``trainer``."""

    def check(params: TrainParams, submit: SubmitContext) -> None:
        _check(trainer, params, submit.owner)

    def run(job: Job, ctx: JobContext) -> dict[str, Any]:
        return _run(trainer, job, ctx)

    return JobKind(
        name="train",
        run=run,
        params=TrainParams,
        queue="train",
        validate=check,
        time_limit_s=6 * 3600,
        max_retries=1,
        summary="Train a U-Net or CNN on a dataset, export to ONNX, register a model version.",
    )


def _check(trainer: TrainerService, params: TrainParams, owner: str | None) -> None:
    from pixelmill.ml import registry_rules as rules
    from pixelmill.services.trainer.service import parse_spec

    spec = parse_spec(params.spec)
    if params.alias is not None:
        rules.check_alias(params.alias)
    trainer.check(params.model, params.dataset, spec, owner=owner, alias=params.alias)


def _run(trainer: TrainerService, job: Job, ctx: JobContext) -> dict[str, Any]:
    from pixelmill.ml.training import TrainingCancelled
    from pixelmill.observability import metrics
    from pixelmill.services.trainer.service import parse_spec

    params = TrainParams.model_validate(job.params)
    for done in (
        trainer.registry.models.versions(params.model) if _exists(trainer, params.model) else []
    ):
        if done.job_id == job.id:  # a redelivered run: the version is already registered
            return {"model": done.model, "version": done.version, "ref": done.ref}
    spec = parse_spec(params.spec)

    def progress(event: dict[str, Any]) -> None:
        m = event.get("metrics", {})
        parts = [f"epoch {event['epoch']}/{event['epochs']}", f"loss {event['loss']:.4f}"]
        parts += [f"{k} {v:.4f}" for k, v in m.items() if k != "loss"]
        parts.append(f"ETA {event['eta_seconds']:.0f}s")
        fraction = event["step"] / max(event["steps"], 1)
        metrics.TRAINING_PROGRESS.labels(params.model).set(fraction)
        ctx.progress(fraction, ", ".join(parts), force=True)
        # the loss curve so far, readable while the run goes on (GET /v1/training-runs/{id})
        ctx.save_state(HISTORY, orjson.dumps(event["history"]))

    def checkpoint(_epoch: int, state: bytes) -> None:
        # the best state dict so far, as the job's "checkpoint" artifact (torch.load-able)
        ctx.put_artifact("checkpoint", state)

    resume = ctx.load_state("training")
    if resume is not None:
        ctx.progress(0.0, "resuming from the last saved epoch", force=True)
    try:
        version = trainer.train(
            params.model,
            params.dataset,
            spec,
            on_progress=progress,
            should_stop=ctx.cancelled,
            on_checkpoint=checkpoint,
            on_epoch=lambda state: ctx.save_state("training", state),
            resume=resume,
            actor=job.owner,
            job_id=job.id,
            alias=params.alias,
            command=f"POST /v1/jobs kind=train params={params.model_dump_json()}",
        )
    except TrainingCancelled as exc:
        metrics.TRAINING_RUNS.labels("cancelled").inc()
        raise JobCancelled(str(exc)) from None
    except Exception:
        metrics.TRAINING_RUNS.labels("failed").inc()
        raise
    metrics.TRAINING_RUNS.labels("succeeded").inc()
    metrics.TRAINING_PROGRESS.labels(params.model).set(1.0)
    if params.alias:
        trainer.registry.promote(params.model, version.version, params.alias, actor=job.owner)
    ctx.put_artifact("history", version.card.get("history", []))
    return {
        "model": version.model,
        "version": version.version,
        "ref": version.ref,
        "metrics": version.metrics,
    }


def _exists(trainer: TrainerService, name: str) -> bool:
    from pixelmill.errors import NotFound

    try:
        trainer.registry.models.get_model(name)
    except NotFound:
        return False
    return True
