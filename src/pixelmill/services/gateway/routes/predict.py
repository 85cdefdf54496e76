"""``POST /v1/models/{ref}/predict``: a prediction on a stored image or on image bytes,
answered as JSON with the mask stored, or with the mask itself (``store=false``)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pixelmill.errors import InvalidInput, InvalidParameter
from pixelmill.imaging.ops import validation_errors
from pixelmill.ml.registry_rules import parse_ref
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.gateway.routes.datasets import read_body
from pixelmill.services.inference.cells import CSV, DEFAULT_SEGMENTER, csv_of, is_graph
from pixelmill.services.model_registry import Caller
from pixelmill.services.workspace.principal import Principal

router = APIRouter(tags=["models"])
#: media types of an inline mask (services/inference/answers.py)
PNG, NPY = "image/png", "application/x-npy"


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_id: str = Field(min_length=1, max_length=64)
    threshold: float | None = Field(None, gt=0, lt=1)
    scale: float = Field(
        1.0,
        ge=0.05,
        le=8,
        description="Resize the input first (0.5: objects twice the trained size).",
    )
    measure: bool = Field(False, description="Add per-object measurements of the mask.")
    #: graph models: the image's cells as a label image, or the model that finds them
    labels_image_id: str | None = Field(None, min_length=1, max_length=64)
    segmenter: str | None = Field(None, min_length=1, max_length=200)


@router.post(
    "/v1/models/{ref}/predict",
    summary="Predict with name@alias / name:version on a stored image ({'image_id'}) or image bytes",
    description=(
        "JSON body {image_id, threshold?, scale?, measure?}, or the image bytes as the body "
        "(then threshold/scale/measure as query parameters). Returns the version used, the stored mask "
        "image id (segmentation) or label and scores (classification), and the drift state. "
        "Images larger than the model's tile are tiled. With store=false nothing is stored "
        "(neither the mask nor uploaded bytes): a segmentation answers with the mask itself, "
        "PNG (0/255), or .npy with 'Accept: application/x-npy', and the version in "
        "Pixelmill-Model / Pixelmill-Model-Version headers. A graph model classifies the "
        "image's cells: {image_id, labels_image_id?, segmenter?}; CSV with 'Accept: text/csv'."
    ),
    response_model=None,
    responses={200: {"content": {PNG: {}, NPY: {}}}},
)
async def predict(
    request: Request,
    ref: str,
    threshold: float | None = Query(None, gt=0, lt=1),
    scale: float = Query(1.0, ge=0.05, le=8),
    measure: bool = Query(False),
    store: bool = Query(
        True, description="false: answer with the mask (PNG or .npy) and store nothing."
    ),
    key: Principal | None = Depends(require("write")),
) -> Response:
    query = PredictQuery(threshold=threshold, scale=scale, measure=measure, store=store)
    return await answer(request, ref, key, query)


class PredictQuery(BaseModel):
    """The route's query parameters, as FastAPI validates them (also read by
    :mod:`pixelmill.services.gateway.fast_predict`)."""

    model_config = ConfigDict(extra="forbid")
    threshold: float | None = Field(None, gt=0, lt=1)
    scale: float = Field(1.0, ge=0.05, le=8)
    measure: bool = False
    store: bool = True


async def answer(
    request: Request, ref: str, key: Principal | None, query: PredictQuery
) -> Response:
    """The answer to a prediction once the caller is known and the query valid."""
    threshold, scale, measure, store = query.threshold, query.scale, query.measure, query.store
    inference = deps(request).inference
    name = parse_ref(ref).name
    owner = key.user_id if key is not None else ""
    data, raw = None, None
    if request.headers.get("content-type", "").startswith("application/json"):
        # read before any check: an unlimited read that cannot fail with an answer of
        # its own, so the checks below answer as they would have before it
        raw = await request.body()
    else:
        await anyio.to_thread.run_sync(lambda: _may_predict(request, key, name))
        limit = deps(request).settings.server.max_upload_bytes
        data = await read_body(request, limit, "image")
        if not data:
            raise InvalidInput("send {'image_id': ...} as JSON or the image bytes as the body")

    def work() -> Response:
        """The checks, the prediction and its JSON in one worker-thread hop (each hop off
        the event loop and back costs a wake-up of each side, and FastAPI's encoding of a
        returned dict about 1 ms of the loop's time: docs/benchmarks.md, "ML serving").
        The answers are JSON types already, so the bytes are what FastAPI would send."""
        image_id, t, s, m, cells = None, threshold, scale, measure, {}
        if raw is not None:
            _may_predict(request, key, name)
            body = _predict_request(raw)
            _may_use(request, key, ref, body)
            image_id, t, s, m = body.image_id, body.threshold, body.scale, body.measure
            cells = body.model_dump(include={"labels_image_id", "segmenter"})
        else:
            _may_use(request, key, ref, None)
        if store:
            stored = inference.predict(
                ref,
                owner_id=owner,
                image_id=image_id,
                data=data,
                threshold=t,
                scale=s,
                measure=m,
                **cells,
            )
            if "cells" in stored and CSV in request.headers.get("accept", ""):
                return Response(csv_of(stored["cells"]), media_type=CSV)
            return JSONResponse(stored)
        if m:
            raise InvalidParameter("measure needs the JSON answer: leave store on to measure")
        media_type = NPY if NPY in request.headers.get("accept", "") else PNG
        answer = inference.predict_inline(
            ref, image_id=image_id, data=data, threshold=t, scale=s, media_type=media_type
        )
        if isinstance(answer, dict):  # a classification: nothing to store anyway
            return JSONResponse(answer)
        return Response(answer.content, media_type=answer.media_type, headers=answer.headers)

    return await anyio.to_thread.run_sync(work)


def _predict_request(raw: bytes) -> PredictRequest:
    try:
        return PredictRequest.model_validate_json(raw)
    except ValidationError as exc:  # per-field errors, not pydantic's text
        raise InvalidParameter("invalid predict request", errors=validation_errors(exc)) from None


def _may_predict(request: Request, key: Principal | None, name: str) -> None:
    """404 unless the caller may read model ``name``, 403 unless they may predict with it
    (positive answers remembered for ``ml.resolve_ttl_s``: services/inference/grants.py)."""
    deps(request).inference.grants.authorize(Caller.of(key), name)


def _may_use(request: Request, key: Principal | None, ref: str, b: PredictRequest | None) -> None:
    """The caller may use the image, label image and segmenter (404 otherwise)."""
    if b is not None:
        deps(request).access.image(key, b.image_id)
    if b is not None and b.labels_image_id is not None:
        deps(request).access.image(key, b.labels_image_id)
    elif (b is not None and b.segmenter is not None) or is_graph(deps(request).inference, ref):
        segmenter = b.segmenter if b is not None and b.segmenter else DEFAULT_SEGMENTER
        _may_predict(request, key, parse_ref(segmenter).name)
