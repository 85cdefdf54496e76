"""The built-in job kind ``faces``: find the faces in each input image.

One task per input image. Each task stores an artifact ``faces`` — one record per face:
``image``, ``box`` ``[x0, y0, x1, y1]`` (pixels of the upright image, x along columns)
and ``score`` (the detector's face probability) — served aggregated over the job at
``GET /v1/jobs/{id}/results/faces``. The detector is MTCNN (:mod:`pixelmill.ml.faces`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from pixelmill.errors import ImageTooLarge
from pixelmill.imaging import pipeline
from pixelmill.imaging.faces import box_json, find_faces
from pixelmill.services.jobs.kinds import JobKind

if TYPE_CHECKING:
    from pixelmill.services.images import ImageService
    from pixelmill.services.jobs.context import Job, JobContext


class FacesParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_score: float = Field(
        0.9, ge=0, le=1, description="Keep faces the detector scores at least this high."
    )


def faces_kind(images: ImageService) -> JobKind:
    """The ``faces`` kind over ``images`` (sources and the face detector)."""

    def run(job: Job, ctx: JobContext) -> dict[str, Any]:
        params = FacesParams.model_validate(job.params)
        assert ctx.task.input is not None
        record = images.record(ctx.task.input)
        if record.width * record.height > images.settings.max_pixels:
            raise ImageTooLarge(
                "the image is over render.max_pixels", max_pixels=images.settings.max_pixels
            )
        op_ctx = images.context(record)
        with ctx.step("detect faces"):
            image = pipeline.run(images.source_of(record), [], op_ctx, random_access=True)
            boxes = find_faces(image, op_ctx.detect_faces)
        boxes = boxes[boxes[:, 4] >= params.min_score]
        found = [{"image": record.id, **face} for face in box_json(boxes)]
        ctx.put_artifact("faces", found)
        return {"image": record.id, "faces": len(found), "artifacts": ["faces"]}

    return JobKind(
        name="faces",
        run=run,
        params=FacesParams,
        queue="analyse",
        fan_out="per_input",
        min_inputs=1,
        summary="Find faces in each image: boxes and scores (artifact 'faces').",
    )
