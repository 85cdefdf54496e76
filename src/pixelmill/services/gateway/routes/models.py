"""/v1/models: the model registry (versions, aliases, audit, compare), health and drift
(predictions: :mod:`.predict`; training runs: :mod:`.training`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pixelmill.errors import InvalidParameter, QuotaExceeded
from pixelmill.ml.drift import parse_flag_note
from pixelmill.ml.registry_rules import parse_ref
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.bounds import INT32_MAX
from pixelmill.services.gateway.deps import deps
from pixelmill.services.gateway.routes.datasets import actor, read_body
from pixelmill.services.model_registry import DEFAULT_MODEL, Caller
from pixelmill.services.workspace.model_rules import ModelAction
from pixelmill.services.workspace.principal import Principal

if TYPE_CHECKING:
    from pixelmill.services.inference.service import InferenceService
    from pixelmill.services.model_registry import ModelRegistry

router = APIRouter(tags=["models"])
_MAX_MODEL_BYTES = 512 * 1024 * 1024


def _registry(request: Request) -> ModelRegistry:
    return deps(request).models


def allowed(
    request: Request, key: Principal | None, name: str, action: ModelAction
) -> ModelRegistry:
    """The registry, once the caller may take ``action`` on model ``name`` (404 when they
    may not read it, 403 when they may read it but not do this)."""
    registry = _registry(request)
    registry.authorize(Caller.of(key), name, action)
    if key is not None and key.is_admin and action == "model.read":
        granted = registry.permissions.level(name, key.user_id)
        if granted is None and name != DEFAULT_MODEL:  # not one of theirs: an admin's read
            deps(request).access.admin_read(key, "model", name)
    return registry


def _inference(request: Request) -> InferenceService:
    return deps(request).inference


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=INT32_MAX, description="The version the alias should point at.")
    note: str | None = Field(None, max_length=1000)
    require_better_on: str | None = Field(
        None,
        max_length=64,
        description="A dataset id: refuse (409) unless the version beats the alias's holder "
        "on it (both evaluated); default: the gate set on the alias, if any.",
    )
    metric: str = Field("f1@0.5", description="The score the gate compares (docs/ml.md).")


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_version: int | None = Field(
        None,
        ge=1,
        le=INT32_MAX,
        description="A version the alias held before (else 409: promote it, through its "
        "gate). Default: before the last promotion.",
    )
    note: str | None = Field(None, max_length=1000)


@router.get("/v1/models", summary="List models with their aliases and newest version")
def list_models(
    request: Request, key: Principal | None = Depends(require("read"))
) -> dict[str, Any]:
    return {"items": _registry(request).list(Caller.of(key))}


@router.post(
    "/v1/models/{name}/versions",
    status_code=201,
    summary="Register an ONNX file as the next version of a model (body: the .onnx bytes)",
)
async def register_version(
    request: Request,
    name: str,
    input_spec: str = Query('{"task": "segmentation"}', description="InputSpec as JSON."),
    metrics: str = Query("{}", description="Metrics as a JSON object."),
    description: str = Query("", max_length=2000),
    key: Principal | None = Depends(require("write")),
) -> dict[str, Any]:
    try:
        spec, scores = json.loads(input_spec), json.loads(metrics)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(f"input_spec and metrics must be JSON: {exc}") from None
    if not isinstance(spec, dict) or not isinstance(scores, dict):
        raise InvalidParameter("input_spec and metrics must be JSON objects")
    registry = _registry(request)
    exists = await anyio.to_thread.run_sync(
        lambda: registry.authorize(Caller.of(key), name, "model.register")
    )
    data = await read_body(request, _MAX_MODEL_BYTES, "model")
    quotas, owner = deps(request).quotas, key.user_id if key is not None else ""
    try:
        record = await anyio.to_thread.run_sync(
            lambda: registry.register(
                data,
                name=name,
                input_spec=spec,
                metrics=scores,
                description=description,
                actor=actor(key),
                manager=key.user_id if key is not None else None,
                new_only=not exists,
                max_stored_bytes=quotas.stored_limit(owner),
            )
        )
    except QuotaExceeded as exc:
        quotas.denied(owner, exc)
        raise
    return record.to_json()


@router.get("/v1/models/{name}", summary="A model: versions, aliases")
def get_model(
    request: Request, name: str, key: Principal | None = Depends(require("read"))
) -> dict[str, Any]:
    return allowed(request, key, name, "model.read").describe(name)


@router.get("/v1/models/{name}/versions/{version}", summary="One version with its full card")
def get_version(
    request: Request,
    name: str,
    version: int = Path(ge=1, le=INT32_MAX),
    key: Principal | None = Depends(require("read")),
) -> dict[str, Any]:
    registry = allowed(request, key, name, "model.read")
    body = registry.models.version(name, version).to_json(full=True)
    body["evaluations"] = [e.to_json() for e in registry.evaluations.list(name, version)]
    return body


@router.delete(
    "/v1/models/{name}/versions/{version}",
    status_code=204,
    summary="Delete a version (409 while aliased)",
)
def delete_version(
    request: Request,
    name: str,
    version: int = Path(ge=1, le=INT32_MAX),
    key: Principal | None = Depends(require("write")),
) -> Response:
    allowed(request, key, name, "model.delete").delete_version(name, version, actor=actor(key))
    return Response(status_code=204)


@router.get("/v1/models/{name}/compare", summary="Compare versions' metrics side by side")
def compare(
    request: Request,
    name: str,
    versions: str | None = Query(None, description="Comma-separated versions; default all."),
    key: Principal | None = Depends(require("read")),
) -> dict[str, Any]:
    registry = allowed(request, key, name, "model.read")
    wanted = None
    if versions:
        try:
            wanted = [int(v) for v in versions.split(",") if v.strip()]
        except ValueError:
            raise InvalidParameter("versions is a comma-separated list of numbers") from None
    return registry.compare(name, wanted)


@router.get(
    "/v1/models/{name}/audit",
    summary="The audit trail: registrations, alias moves, deletions, drift",
)
def audit(
    request: Request, name: str, key: Principal | None = Depends(require("read"))
) -> dict[str, Any]:
    return {"items": [a.to_json() for a in allowed(request, key, name, "model.read").audit(name)]}


@router.put("/v1/models/{name}/aliases/{alias}", summary="Promote: point an alias at a version")
def promote(
    request: Request,
    name: str,
    alias: str,
    body: PromoteRequest,
    key: Principal | None = Depends(require("write")),
) -> dict[str, Any]:
    registry = allowed(request, key, name, "model.promote")
    gate = None
    if body.require_better_on:
        gate = deps(request).evaluation.gate(Caller.of(key), body.require_better_on, body.metric)
    return registry.promote(
        name, body.version, alias, actor=actor(key), note=body.note, gate=gate
    ).to_json()


@router.post("/v1/models/{name}/aliases/{alias}/rollback", summary="Roll an alias back")
def rollback(
    request: Request,
    name: str,
    alias: str,
    body: RollbackRequest | None = None,
    key: Principal | None = Depends(require("write")),
) -> dict[str, Any]:
    body = body or RollbackRequest()
    return (
        allowed(request, key, name, "model.promote")
        .rollback(name, alias, actor=actor(key), to_version=body.to_version, note=body.note)
        .to_json()
    )


@router.delete("/v1/models/{name}/aliases/{alias}", status_code=204, summary="Remove an alias")
def delete_alias(
    request: Request, name: str, alias: str, key: Principal | None = Depends(require("write"))
) -> Response:
    allowed(request, key, name, "model.delete").delete_alias(name, alias, actor=actor(key))
    return Response(status_code=204)


@router.get("/v1/models/{ref}/health", summary="Loaded / ready state of a model version")
def health(
    request: Request,
    ref: str,
    response: Response,
    load: bool = Query(False, description="Load the model now if it is not loaded (readiness)."),
    key: Principal | None = Depends(require("read")),
) -> dict[str, Any]:
    allowed(request, key, parse_ref(ref).name, "model.read")
    state = _inference(request).health(ref, load=load)
    if load and not state.get("ready"):
        response.status_code = 503
    return state


@router.get(
    "/v1/models/{ref}/drift", summary="Input drift of the served window vs the training reference"
)
def drift(
    request: Request, ref: str, key: Principal | None = Depends(require("read"))
) -> dict[str, Any]:
    allowed(request, key, parse_ref(ref).name, "model.read")
    return _inference(request).drift(ref)


@router.get(
    "/v1/models/{name}/drift-history",
    summary="Drift over time: every flagged crossing (PSI) the audit trail holds, and each "
    "alias's score now",
)
def drift_history(
    request: Request, name: str, key: Principal | None = Depends(require("read"))
) -> dict[str, Any]:
    registry = allowed(request, key, name, "model.read")
    items = []
    for event in registry.audit(name):
        parsed = parse_flag_note(event.note) if event.action == "drift" else None
        if parsed is not None:
            items.append(
                {
                    "at": event.at.isoformat(),
                    "version": event.to_version,
                    "score": parsed["score"],
                    "threshold": parsed["threshold"],
                    "window": int(parsed["window"]),
                }
            )
    now = datetime.now(UTC).isoformat()
    current = []
    for alias, version in sorted(registry.describe(name)["aliases"].items()):
        state = _inference(request).drift(f"{name}:{version}")
        current.append({"alias": alias, "at": now, **state})
    return {"model": name, "items": items, "current": current}


@router.get("/v1/inference/models", summary="Model versions loaded in this process, with health")
def loaded(request: Request, key: Principal | None = Depends(require("read"))) -> dict[str, Any]:
    readable = _registry(request).readable(Caller.of(key))
    items = _inference(request).loaded()
    return {"items": [i for i in items if readable is None or i["model"] in readable]}
