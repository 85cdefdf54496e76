"""/v1/studies/{id}/export/...: a study's results for analysis elsewhere."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from pixelmill.services.gateway.auth import require
from pixelmill.services.gateway.deps import deps
from pixelmill.services.workspace.exports import MEDIA, encode
from pixelmill.services.workspace.principal import Principal

router = APIRouter(prefix="/v1/studies/{study_id}/export", tags=["studies"])


@router.get(
    "/measurements",
    summary="Per-object measurements of the finished analyses, with image and patient "
    "attributes (CSV or Parquet)",
)
def export_measurements(
    request: Request,
    study_id: str,
    format: Literal["csv", "parquet"] = Query("csv"),
    principal: Principal = Depends(require("read")),
) -> Response:
    c = deps(request)
    c.access.study(principal, study_id, "study.export")
    body = encode(c.exports.measurements(study_id), format)
    name = f"study-{study_id}-measurements.{format}"
    return Response(
        body,
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
