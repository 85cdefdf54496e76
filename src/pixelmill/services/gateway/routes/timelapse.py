"""/v1/models/{ref}/timelapse: a time-lapse model on every frame of a multi-frame image,
the masks stored as one multi-page TIFF, and with ``track`` the objects followed through
the frames with the per-track table (speed, area over time, divisions)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pixelmill.errors import InvalidInput, InvalidParameter
from pixelmill.imaging.ops import validation_errors
from pixelmill.ml.registry_rules import parse_ref
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.gateway.routes.datasets import read_body
from pixelmill.services.gateway.routes.models import allowed
from pixelmill.services.inference.timelapse import TrackOptions, predict_timelapse
from pixelmill.services.workspace.principal import Principal

router = APIRouter(tags=["models"])


class TimelapseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_id: str = Field(min_length=1, max_length=64, description="A multi-frame image.")
    threshold: float | None = Field(None, gt=0, lt=1)
    scale: float = Field(1.0, ge=0.05, le=8, description="Resize the frames first.")
    track: bool = Field(False, description="Also track the objects through the frames.")
    tracking: TrackOptions = Field(default_factory=TrackOptions)


@router.post(
    "/v1/models/{ref}/timelapse",
    summary="Segment every frame of a time-lapse with a time-lapse model; track the objects",
    description=(
        "JSON body {image_id, threshold?, scale?, track?, tracking?} or the multi-page TIFF "
        "as the body (then threshold/scale/track as query parameters). Each frame is "
        "predicted from the window of the model's `frames` around it. Answers the version "
        "that ran, the number of frames, each frame's foreground fraction and "
        "`mask_image_id` (the masks as one multi-page TIFF, 0/255); with `track`, "
        "`labels_image_id` (each frame's objects), `tracking` (counts) and `tracks`, one "
        "row per track (frames, fate, parent and children, path length, speed, area at "
        "start / end / mean); `tracking.objects: true` adds every object of every frame."
    ),
)
async def post_timelapse(
    request: Request,
    ref: str,
    threshold: float | None = Query(None, gt=0, lt=1),
    scale: float = Query(1.0, ge=0.05, le=8),
    track: bool = Query(False),
    key: Principal | None = Depends(require("write")),
) -> dict[str, Any]:
    owner = key.user_id if key is not None else ""
    body = TimelapseRequest.model_construct(
        image_id="", threshold=threshold, scale=scale, track=track, tracking=TrackOptions()
    )
    data = None
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = TimelapseRequest.model_validate_json(await request.body())
        except ValidationError as exc:  # per-field errors, not pydantic's text
            raise InvalidParameter("invalid request", errors=validation_errors(exc)) from None
    else:
        limit = deps(request).settings.server.max_upload_bytes
        data = await read_body(request, limit, "image")
        if not data:
            raise InvalidInput("send {'image_id': ...} as JSON or the TIFF as the body")

    def run() -> dict[str, Any]:
        allowed(request, key, parse_ref(ref).name, "model.predict")
        if data is None:
            deps(request).access.image(key, body.image_id)
        inference = deps(request).inference
        loaded = inference.load(ref)
        if loaded.model.spec.task != "timelapse":
            raise InvalidParameter(
                f"model {loaded.version.ref} is a {loaded.model.spec.task} model, not a "
                "time-lapse one: use POST /v1/models/{ref}/predict"
            )
        return predict_timelapse(
            inference,
            loaded,
            body.image_id if data is None else None,
            data,
            owner,
            threshold=body.threshold,
            scale=body.scale,
            track=body.tracking if body.track else None,
        )

    return await anyio.to_thread.run_sync(run)
