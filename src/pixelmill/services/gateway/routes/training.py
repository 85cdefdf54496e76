"""/v1/training-runs: start training as a ``train`` job, the JSON Schema of its spec,
and a run's loss curve (per-epoch history), readable while it trains."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from pixelmill.errors import NotFound
from pixelmill.ml.spec import TrainSpec
from pixelmill.services.gateway.audit_trail import job_scope as scope
from pixelmill.services.gateway.audit_trail import visible_job
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.trainer.kind import HISTORY
from pixelmill.services.workspace.principal import Principal

router = APIRouter(prefix="/v1/training-runs", tags=["models"])


class TrainingRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="Model name; the run registers its next version.")
    dataset: str = Field(description="Dataset id.")
    spec: dict[str, Any] = Field(default_factory=dict, description="Training spec (docs/ml.md).")
    alias: str | None = Field(None, description="Point this alias at the new version.")
    priority: int = Field(0, ge=0, le=9)


@router.post("", status_code=202, summary="Train a model: submits a 'train' job")
def start_training(
    request: Request, body: TrainingRunRequest, key: Principal | None = Depends(require("write"))
) -> dict[str, Any]:
    jobs = deps(request).jobs
    params = {"model": body.model, "dataset": body.dataset, "spec": body.spec, "alias": body.alias}
    job, _created = jobs.submit(
        kind="train", params=params, priority=body.priority, owner=key.user_id if key else None
    )
    return {
        "job_id": job.id,
        "state": job.state,
        "links": {
            "job": f"/v1/jobs/{job.id}",
            "events": f"/v1/jobs/{job.id}/events",
            "run": f"/v1/training-runs/{job.id}",
        },
    }


@router.get(
    "/spec",
    summary="The JSON Schema of a training spec (fields, defaults, bounds)",
    dependencies=[Depends(require("read"))],
)
def spec_schema() -> dict[str, Any]:
    return TrainSpec.model_json_schema()


@router.get("/{job_id}", summary="A training run: state, progress and the loss per epoch so far")
def training_run(
    request: Request, job_id: str, key: Principal | None = Depends(require("read"))
) -> dict[str, Any]:
    jobs = deps(request).jobs
    job = visible_job(request, key, job_id)
    if job.kind != "train":
        raise NotFound(f"job {job_id!r} is not a training run")
    saved = jobs.saved_state(job_id, HISTORY, owner=scope(key))
    history: list[dict[str, Any]] = orjson.loads(saved) if saved else []
    if job.state == "succeeded":  # the registered version's history is the final word
        with contextlib.suppress(NotFound):
            history = orjson.loads(jobs.artifact(job_id, HISTORY, "json", 0).body)
    tasks = jobs.tasks(job_id)
    task = tasks[0] if tasks else None
    return {
        "job_id": job.id,
        "state": job.state,
        "model": job.params.get("model"),
        "dataset": job.params.get("dataset"),
        "epochs": (job.params.get("spec") or {}).get("epochs", TrainSpec().epochs),
        "progress": task.progress if task else 0.0,
        "message": task.message if task else None,
        "history": history,
        "result": job.result,
        "error": job.error,
    }
