"""/v1/studies/{id}/datasets and /v1/studies/{id}/training-loops: a training dataset
from the study's annotations in one call, and the train → evaluate → promote-if-better
loop on it, as one job whose steps show on the study's live stream."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from pixelmill.ml.scores import GATE_METRICS
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.promotion_gate import DEFAULT_METRIC
from pixelmill.services.training_sets import DatasetOptions, StudyDatasets
from pixelmill.services.workspace.principal import Principal


def _gate_metric(metric: str) -> str:
    if metric not in GATE_METRICS:
        raise ValueError(f"a gate compares one of {', '.join(GATE_METRICS)}")
    return metric


#: a score a gate compares: one of pixelmill.ml.scores.GATE_METRICS, listed in the JSON
#: Schema as an enum (the study page builds its form from it)
Metric = Annotated[
    str,
    AfterValidator(_gate_metric),
    WithJsonSchema({"type": "string", "enum": list(GATE_METRICS)}),
]

router = APIRouter(prefix="/v1/studies/{study_id}", tags=["training"])


def study_datasets(request: Request) -> StudyDatasets:
    c = deps(request)
    return StudyDatasets(
        access=c.access,
        annotations=c.annotations,
        study_images=c.study_images,
        images=c.image_service,
        trainer=c.trainer,
        events=c.events,
    )


@router.post(
    "/datasets",
    status_code=201,
    summary="Build a training dataset from the study's annotations (analyst and up)",
)
def build_dataset(
    request: Request,
    response: Response,
    study_id: str,
    body: DatasetOptions,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    record, created = study_datasets(request).build(principal, study_id, body)
    if not created:
        response.status_code = 200  # the same images and masks: the dataset already made
    response.headers["Location"] = f"/v1/datasets/{record.id}"
    return record.to_json()


class NewLoop(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Train from annotations")

    model: str = Field("nuclei", min_length=1, max_length=200, description="Model name.")
    dataset: str | None = Field(
        None, description="A dataset id; default: build one from the study's annotations."
    )
    dataset_options: DatasetOptions = Field(
        default_factory=DatasetOptions, description="How to build it (without 'dataset')."
    )
    spec: dict[str, Any] = Field(default_factory=dict, description="TrainSpec fields.")
    alias: str = Field("production", description="The alias the new version may take.")
    metric: Metric = Field(DEFAULT_METRIC, description="The score it must beat the holder's on.")


@router.get(
    "/training-loops/schema",
    summary="The JSON Schema of a training loop's body (the study page builds its form from it)",
)
def loop_schema(
    request: Request, study_id: str, principal: Principal = Depends(require("read"))
) -> dict[str, Any]:
    deps(request).access.study(principal, study_id, "study.read")
    return NewLoop.model_json_schema()


@router.post(
    "/training-loops",
    status_code=202,
    summary="Train a new version, evaluate it against the alias's holder, promote if better",
)
def start_loop(
    request: Request,
    response: Response,
    study_id: str,
    body: NewLoop,
    principal: Principal = Depends(require("write")),
) -> dict[str, Any]:
    c = deps(request)
    c.access.study(principal, study_id, "model.train")
    dataset = body.dataset
    if dataset is None:
        record, _ = study_datasets(request).build(principal, study_id, body.dataset_options)
        dataset = record.id
    params = {
        "study_id": study_id,
        "model": body.model,
        "dataset": dataset,
        "spec": body.spec,
        "alias": body.alias,
        "metric": body.metric,
    }
    job, _ = c.jobs.submit(kind="training_loop", params=params, owner=principal.user_id)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return {
        "job_id": job.id,
        "dataset": dataset,
        "model": body.model,
        "alias": body.alias,
        "metric": body.metric,
        "links": {
            "job": f"/v1/jobs/{job.id}",
            "cancel": f"/v1/jobs/{job.id}/cancel",
            "events": f"/v1/studies/{study_id}/events/stream",
            "dataset": f"/v1/datasets/{dataset}",
            "rollback": f"/v1/models/{body.model}/aliases/{body.alias}/rollback",
        },
    }
