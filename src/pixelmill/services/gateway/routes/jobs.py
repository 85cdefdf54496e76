"""/v1/jobs: submit, list, read, cancel and watch (SSE) asynchronous jobs; results.

Jobs are scoped per API key: a job records the id of the key that submitted it, and a
non-admin key reads, lists, cancels and watches only its own — another key's job
answers 404 like an unknown id. Admins see every job (``?owner=`` filters the
list). With authentication disabled there are no keys and no scoping."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import anyio
import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from pixelmill.backends.metadata.jobs import TERMINAL, JobRecord, TaskRecord
from pixelmill.errors import Forbidden, InvalidParameter
from pixelmill.services.gateway import audit_trail
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.bounds import INT32_MAX, INT64_MAX, event_cursor
from pixelmill.services.gateway.deps import deps
from pixelmill.services.jobs.artifacts import ARTIFACT_MEDIA, Format
from pixelmill.services.workspace.principal import Principal

if TYPE_CHECKING:
    from pixelmill.services.jobs.service import JobService

router = APIRouter(tags=["jobs"])
KEEPALIVE_S = 15.0
#: ``GET /v1/jobs?owner=none``: jobs submitted without a key (stored with owner "")
UNOWNED = "none"


class JobRequest(BaseModel):
    """``POST /v1/jobs``. For the default kind ``pipeline``, give ``pipeline`` (and
    optionally ``output``); other kinds take their ``params``."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field("pipeline", max_length=32, description="Job kind, see GET /v1/job-kinds.")
    inputs: list[str] = Field(default_factory=list, description="Input image ids.")
    pipeline: list[dict[str, Any]] | None = Field(
        None, description="Steps from the operation registry: [{'op': name, ...params}]."
    )
    output: dict[str, Any] | None = Field(None, description="Result image: {format, quality, ...}")
    region: dict[str, Any] | None = Field(None, description="Pipeline: {left, top, width, height}.")
    params: dict[str, Any] | None = Field(None, description="Parameters of the job kind.")
    priority: int = Field(0, ge=0, le=9, description="0 (normal) to 9; >= 5 jumps the queue.")
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=200, description="Resubmits with the same key are no-ops."
    )


def _jobs(request: Request) -> JobService:
    return deps(request).jobs


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def task_json(job_id: str, task: TaskRecord) -> dict[str, Any]:
    return {
        "index": task.idx,
        "input": task.input,
        "state": task.state,
        "progress": task.progress,
        "message": task.message,
        "attempts": task.attempts,
        "result_image": task.result_image,
        "artifacts": [
            {
                "name": a["name"],
                "kind": a["kind"],
                "size": a["size"],
                "url": f"/v1/jobs/{job_id}/tasks/{task.idx}/results/{a['name']}",
            }
            for a in task.artifacts or []
        ],
        "result": task.result,
        "error": task.error,
        "last_error": task.last_error,
        "started_at": _iso(task.started_at),
        "finished_at": _iso(task.finished_at),
    }


def job_json(job: JobRecord, tasks: list[TaskRecord] | None = None) -> dict[str, Any]:
    progress: dict[str, Any] = {
        "total": job.total,
        "succeeded": job.succeeded,
        "failed": job.failed,
        "cancelled": job.cancelled,
    }
    if tasks is not None:
        progress["running"] = sum(t.state == "running" for t in tasks)
        progress["queued"] = sum(t.state == "queued" for t in tasks)
        share = sum(1.0 if t.state in TERMINAL else t.progress for t in tasks)
        progress["fraction"] = round(share / max(job.total, 1), 4)
    else:
        progress["fraction"] = round(job.done / max(job.total, 1), 4)
    if job.state in TERMINAL:
        progress["fraction"] = 1.0
    body: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "queue": job.queue,
        "priority": job.priority,
        "owner": job.owner or None,
        "params": job.params,
        "inputs": job.inputs,
        "progress": progress,
        "result": job.result,
        "error": job.error,
        "idempotency_key": job.idempotency_key,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "updated_at": _iso(job.updated_at),
        "links": {
            "self": f"/v1/jobs/{job.id}",
            "events": f"/v1/jobs/{job.id}/events",
            "cancel": f"/v1/jobs/{job.id}/cancel",
            "results": f"/v1/jobs/{job.id}/results",
        },
    }
    if tasks is not None:
        body["tasks"] = [task_json(job.id, t) for t in tasks]
        body["results"] = {
            "images": [t.result_image for t in tasks if t.result_image and t.state == "succeeded"]
        }
    return body


@router.post(
    "/v1/jobs",
    status_code=202,
    summary="Submit a job (202 + Location); an idempotent resubmit returns the job with 200",
    response_class=Response,
    responses={
        202: {
            "description": "Accepted: the job, queued (as GET /v1/jobs/{id} without tasks).",
            "content": {"application/json": {}},
        },
        200: {"description": "Same idempotency key and request: the existing job."},
        409: {"description": "Idempotency key reused for a different request."},
        503: {"description": "Backpressure: the queue is full; retry after Retry-After."},
    },
)
def submit(
    request: Request,
    body: JobRequest,
    idempotency_key: str | None = Header(None, max_length=200),
    key: Principal | None = Depends(require("write")),
) -> Response:
    arguments = submit_arguments(body, idempotency_key, key)
    job, created = audit_trail.submit_job(deps(request), key, arguments, audit_trail.ip(request))
    return submit_response(job, created)


def submit_arguments(
    body: JobRequest, idempotency_key: str | None, key: Principal | None
) -> dict[str, Any]:
    """``JobService.submit``'s keyword arguments for a request (shared with the fast path,
    ``services/gateway/fast_submit.py``). Raises ``InvalidParameter``."""
    if idempotency_key is not None and body.idempotency_key not in (None, idempotency_key):
        # which one the client meant is not ours to guess: a silent pick could resubmit
        raise InvalidParameter(
            f"the Idempotency-Key header ({idempotency_key!r}) and the body's "
            f"idempotency_key ({body.idempotency_key!r}) differ: send one, or the same in both",
            idempotency_key_header=idempotency_key,
            idempotency_key_body=body.idempotency_key,
        )
    params = dict(body.params or {})
    if body.kind == "pipeline":
        if body.pipeline is not None:
            params["pipeline"] = body.pipeline
        extra = {"output": body.output, "region": body.region}  # region: a slide's rectangle
        params.update({k: v for k, v in extra.items() if v is not None})
        if "pipeline" not in params:
            raise InvalidParameter("a pipeline job needs 'pipeline': a list of steps")
    elif body.pipeline is not None or body.output is not None or body.region is not None:
        raise InvalidParameter(
            f"'pipeline', 'output', 'region' belong to pipeline jobs; a {body.kind!r} job takes params"
        )
    return {
        "kind": body.kind,
        "params": params,
        "inputs": body.inputs,
        "priority": body.priority,
        "idempotency_key": body.idempotency_key or idempotency_key,
        "owner": key.user_id if key is not None else None,
    }


def submit_response(job: JobRecord, created: bool) -> Response:
    """``202`` (``200`` for an idempotent resubmit) with the job and its ``Location``."""
    # serialised here (orjson) rather than validated and encoded again by FastAPI
    return Response(
        orjson.dumps(job_json(job)),
        status_code=202 if created else 200,
        media_type="application/json",
        headers={"Location": f"/v1/jobs/{job.id}"},
    )


@router.get(
    "/v1/jobs",
    summary="List jobs, newest first (filter by state, kind or owner; cursor pages)",
    description="A non-admin key lists its own jobs; an admin key lists every job and "
    "may filter by `owner`: a user id, or `none` for jobs submitted without a key.",
)
def list_jobs(
    request: Request,
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
    kind: str | None = Query(None, max_length=32),
    owner: str | None = Query(
        None,
        min_length=1,
        max_length=32,
        description="Id of the submitting key, or `none`: jobs submitted without one (admin keys).",
    ),
    limit: int = Query(50, ge=1, le=500),
    after: str | None = Query(None, max_length=32, description="Last id of the previous page."),
    key: Principal | None = Depends(require("read")),
) -> dict[str, Any]:
    mine = audit_trail.job_scope(key)
    if mine is not None and owner not in (None, mine):
        raise Forbidden(
            f"user {mine!r} lists only their own jobs; listing another user's needs an admin key"
        )
    wanted = "" if owner == UNOWNED else owner  # user ids are hex: "none" is never one
    audit_trail.jobs_listed(request, key, wanted)
    jobs = _jobs(request).list_jobs(
        state=state, kind=kind, limit=limit, after=after, owner=mine or wanted
    )
    next_after = jobs[-1].id if len(jobs) == limit else None
    query = "&".join(
        f"{k}={v}" for k, v in (("state", state), ("kind", kind), ("owner", owner)) if v
    )
    return {
        "items": [job_json(j) for j in jobs],
        "next": (
            f"/v1/jobs?limit={limit}&after={next_after}" + (f"&{query}" if query else "")
            if next_after
            else None
        ),
    }


@router.get("/v1/jobs/{job_id}", summary="A job: state, per-image progress, results, errors")
def get_job(
    request: Request, job_id: str, key: Principal | None = Depends(require("read"))
) -> dict[str, Any]:
    job = audit_trail.visible_job(request, key, job_id)
    return job_json(job, _jobs(request).tasks(job_id))


@router.post(
    "/v1/jobs/{job_id}/cancel",
    summary="Cancel a queued or running job (idempotent; 409 once it finished otherwise)",
)
def cancel_job(
    request: Request, job_id: str, key: Principal | None = Depends(require("write"))
) -> dict[str, Any]:
    service = _jobs(request)
    job = service.cancel(job_id, owner=audit_trail.job_scope(key))
    return job_json(job, service.tasks(job_id))


@router.get("/v1/jobs/{job_id}/results", summary="Result images and artifacts of a job")
def results(
    request: Request, job_id: str, key: Principal | None = Depends(require("read"))
) -> dict[str, Any]:
    service = _jobs(request)
    job = audit_trail.visible_job(request, key, job_id)
    tasks = service.tasks(job_id)
    done = [t for t in tasks if t.state == "succeeded"]
    return {
        "job": job.id,
        "state": job.state,
        "images": [
            {"input": t.input, "image": t.result_image, "url": f"/v1/images/{t.result_image}"}
            for t in done
            if t.result_image
        ],
        "artifacts": [
            {"name": name, "url": f"/v1/jobs/{job_id}/results/{name}"}
            for name in service.artifact_names(done)
        ],
        "result": job.result,
    }


@router.get(
    "/v1/jobs/{job_id}/results/{name}",
    summary="An artifact aggregated over the job's tasks (JSON, CSV or Arrow)",
    response_class=Response,
    responses={200: {"content": {media: {} for media in ARTIFACT_MEDIA}}},
)
def job_artifact(
    request: Request,
    job_id: str,
    name: str,
    format: Format | None = Query(None, description="json (default), csv or arrow"),
    key: Principal | None = Depends(require("read")),
) -> Response:
    art = _jobs(request).artifact(job_id, name, format, owner=audit_trail.job_scope(key))
    audit_trail.admin_reads_job(request, key, job_id)
    return Response(art.body, media_type=art.media_type)


@router.get(
    "/v1/jobs/{job_id}/tasks/{index}/results/{name}",
    summary="An artifact of one task",
    response_class=Response,
    responses={200: {"content": {media: {} for media in ARTIFACT_MEDIA}}},
)
def task_artifact(
    request: Request,
    job_id: str,
    index: int = Path(ge=0, le=INT32_MAX),
    name: str = Path(),
    format: Format | None = Query(None, description="json (default), csv or arrow"),
    key: Principal | None = Depends(require("read")),
) -> Response:
    art = _jobs(request).artifact(job_id, name, format, idx=index, owner=audit_trail.job_scope(key))
    audit_trail.admin_reads_job(request, key, job_id)
    return Response(art.body, media_type=art.media_type)


@router.get(
    "/v1/jobs/{job_id}/events",
    summary="Server-Sent Events: state changes and progress; ends after the final state",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def job_events(
    request: Request,
    job_id: str,
    last_event_id: str | None = Header(None),
    after: int = Query(0, ge=0, le=INT64_MAX, description="Replay events after this id."),
    key: Principal | None = Depends(require("read")),
) -> StreamingResponse:
    service = _jobs(request)
    job = await anyio.to_thread.run_sync(partial(audit_trail.visible_job, request, key, job_id))
    cursor = event_cursor(last_event_id, after)
    poll = deps(request).settings.jobs.events_poll_s

    async def stream() -> AsyncIterator[bytes]:
        nonlocal cursor
        snapshot = orjson.dumps({"id": job.id, "state": job.state, "total": job.total})
        yield b"event: snapshot\ndata: " + snapshot + b"\n\n"
        # subscribe before reading, so an event committed in between still wakes us
        news = service.changes.subscribe(job_id)
        sent = time.monotonic()  # when the client last heard from us
        try:
            while not await request.is_disconnected():
                events = await anyio.to_thread.run_sync(service.events, job_id, cursor)
                for event in events:
                    cursor = event.id
                    data = orjson.dumps({**event.data, "at": event.at.isoformat()})
                    head = f"id: {event.id}\nevent: {event.type}\ndata: ".encode()
                    yield head + data + b"\n\n"
                    if event.type == "state" and event.data.get("state") in TERMINAL:
                        return
                if events:
                    sent = time.monotonic()
                else:
                    current = await anyio.to_thread.run_sync(service.get, job_id)
                    if current.terminal and not await anyio.to_thread.run_sync(
                        service.events, job_id, cursor
                    ):
                        return
                if time.monotonic() - sent >= KEEPALIVE_S:
                    yield b": keepalive\n\n"
                    sent = time.monotonic()
                # with notifications, re-reading is only a safety net (for one missed
                # while the listener reconnects): once per keep-alive period
                left = max(KEEPALIVE_S - (time.monotonic() - sent), 0.0)
                await news.wait(left if service.changes.pushed else min(poll, left))
        finally:
            news.close()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/v1/job-kinds", summary="Job kinds: names, queues, parameter schemas")
def job_kinds(request: Request) -> dict[str, Any]:
    return {"items": _jobs(request).kinds.catalogue()}
