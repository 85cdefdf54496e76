"""/v1/models/{ref}/cell-graphs: a graph model on several images at once (a study's),
with each image's graph summary and the summary of them all; the cells as CSV."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pixelmill.ml.registry_rules import parse_ref
from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.gateway.routes.models import allowed
from pixelmill.services.inference.cells import CSV, DEFAULT_SEGMENTER, cell_graphs, csv_of
from pixelmill.services.workspace.principal import Principal

router = APIRouter(tags=["models"])


class CellImage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_id: str = Field(min_length=1, max_length=64)
    labels_image_id: str | None = Field(
        None, min_length=1, max_length=64, description="Its cells; default: the segmenter's."
    )


class CellGraphsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    images: list[CellImage] = Field(min_length=1, max_length=200)
    segmenter: str | None = Field(
        None, min_length=1, max_length=200, description="Finds the cells (default nuclei)."
    )
    scale: float = Field(1.0, ge=0.05, le=8, description="The segmenter's input scale.")
    cells: bool = Field(False, description="Also answer every cell (always in CSV).")


@router.post(
    "/v1/models/{ref}/cell-graphs",
    summary="Classify the cells of several images with a graph model; per image and in all",
    description=(
        "Each image's cells come from its label image or from the segmenter. Answers the "
        "version, each image's graph summary (cells, edges, mean degree and clustering, "
        "class counts, same-class edges, mean neighbourhood per class) and `study`, the "
        "summary of all of them; with `cells`, every cell as a row. 'Accept: text/csv' "
        "answers the cells as CSV with an image_id column."
    ),
    response_model=None,
    responses={200: {"content": {CSV: {}}}},
)
async def post_cell_graphs(
    request: Request,
    ref: str,
    body: CellGraphsRequest,
    key: Principal | None = Depends(require("write")),
) -> dict[str, Any] | Response:
    def check() -> None:
        allowed(request, key, parse_ref(ref).name, "model.predict")
        access = deps(request).access
        for item in body.images:
            access.image(key, item.image_id)
            if item.labels_image_id is not None:
                access.image(key, item.labels_image_id)
        if any(item.labels_image_id is None for item in body.images):
            segmenter = parse_ref(body.segmenter or DEFAULT_SEGMENTER).name
            allowed(request, key, segmenter, "model.predict")

    await anyio.to_thread.run_sync(check)
    items = [(item.image_id, item.labels_image_id) for item in body.images]
    answer = await anyio.to_thread.run_sync(
        lambda: cell_graphs(
            deps(request).inference, ref, items, segmenter=body.segmenter, scale=body.scale
        )
    )
    if CSV in request.headers.get("accept", ""):
        return Response(csv_of(answer["cells"]), media_type=CSV)
    if not body.cells:
        answer.pop("cells")
    return answer
