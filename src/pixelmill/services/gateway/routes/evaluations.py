"""/v1/models/{name}/.../evaluations: score a version on a dataset (an ``evaluate``
job) and list the stored scores; /v1/models/{name}/gates: promotion gates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pixelmill.services import promotion_gate
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.bounds import INT32_MAX
from pixelmill.services.gateway.deps import deps
from pixelmill.services.gateway.routes.datasets import actor
from pixelmill.services.gateway.routes.models import allowed
from pixelmill.services.model_registry import Caller
from pixelmill.services.promotion_gate import DEFAULT_METRIC
from pixelmill.services.workspace.principal import Principal

router = APIRouter(tags=["models"])


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(min_length=1, max_length=64, description="Dataset id (images + masks).")
    split: str = Field("all", description="all, or the dataset's val or train split.")
    priority: int = Field(0, ge=0, le=9)


class GateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(min_length=1, max_length=32, description="The evaluation dataset id.")
    metric: str = Field(DEFAULT_METRIC, description="A score name, e.g. f1@0.5, map, pq.")


@router.post(
    "/v1/models/{name}/versions/{version}/evaluations",
    status_code=202,
    summary="Evaluate a version on a dataset: submits an 'evaluate' job",
    description=(
        "Scores pixel Dice, object precision/recall/F1 at IoU 0.5 and 0.75, mean AP over "
        "IoU 0.5-0.9, panoptic quality and count error (docs/ml.md). Needs read on the "
        "model and a dataset of your own. The job's result is the stored evaluation."
    ),
)
def evaluate(
    request: Request,
    name: str,
    body: EvaluateRequest,
    version: int = Path(ge=1, le=INT32_MAX),
    key: Principal | None = Depends(require("write")),
) -> dict[str, Any]:
    params = {"model": name, "version": version, "dataset": body.dataset, "split": body.split}
    job, _created = deps(request).jobs.submit(
        kind="evaluate",
        params=params,
        priority=body.priority,
        owner=key.user_id if key else None,
    )
    return {
        "job_id": job.id,
        "state": job.state,
        "links": {
            "job": f"/v1/jobs/{job.id}",
            "events": f"/v1/jobs/{job.id}/events",
            "evaluations": f"/v1/models/{name}/versions/{version}/evaluations",
        },
    }


@router.get(
    "/v1/models/{name}/versions/{version}/evaluations",
    summary="A version's stored evaluations, newest first",
)
def version_evaluations(
    request: Request,
    name: str,
    version: int = Path(ge=1, le=INT32_MAX),
    dataset: str | None = Query(None, max_length=64),
    key: Principal | None = Depends(require("read")),
) -> dict[str, Any]:
    items = deps(request).evaluation.list(Caller.of(key), name, version, dataset)
    return {"items": items}


@router.get(
    "/v1/models/{name}/evaluations",
    summary="Every version's evaluations (newest first), to compare versions on a dataset",
)
def model_evaluations(
    request: Request,
    name: str,
    dataset: str | None = Query(None, max_length=64),
    key: Principal | None = Depends(require("read")),
) -> dict[str, Any]:
    return {"items": deps(request).evaluation.list(Caller.of(key), name, None, dataset)}


@router.get("/v1/models/{name}/gates", summary="The promotion gates set on a model's aliases")
def gates(
    request: Request, name: str, key: Principal | None = Depends(require("read"))
) -> dict[str, Any]:
    registry = allowed(request, key, name, "model.read")
    return {"items": [g.to_json() for g in registry.evaluations.gates(name)]}


@router.put(
    "/v1/models/{name}/gates/{alias}",
    summary="Gate an alias: promotions must beat its holder on a dataset and metric",
)
def set_gate(
    request: Request,
    name: str,
    alias: str,
    body: GateRequest,
    key: Principal | None = Depends(require("write")),
) -> dict[str, Any]:
    registry = allowed(request, key, name, "model.promote")
    gate = deps(request).evaluation.gate(Caller.of(key), body.dataset, body.metric)
    return promotion_gate.set_gate(
        registry.models, registry.evaluations, name, alias, gate, actor=actor(key)
    ).to_json()


@router.delete("/v1/models/{name}/gates/{alias}", status_code=204, summary="Remove a gate")
def delete_gate(
    request: Request, name: str, alias: str, key: Principal | None = Depends(require("write"))
) -> Response:
    registry = allowed(request, key, name, "model.promote")
    promotion_gate.delete_gate(registry.models, registry.evaluations, name, alias, actor=actor(key))
    return Response(status_code=204)
