"""The built-in job kind ``pipeline``: run registry steps on each input image.

One task per input image, or per input image's ``region`` (a rectangle in full-resolution
pixels: the steps see only it, so a whole slide over ``render.max_pixels`` is analysed a
region at a time; the results' coordinates are moved back into the image's). Each step
runs with its own time limit; non-image outputs that steps put in ``ctx.artifacts``
(tables, JSON) are stored per task and aggregated over the job; the output image is
stored content-addressed (so a re-run after a crash yields the same result id). Also the
reference implementation of a job kind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import orjson
from cachetools import LRUCache
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pixelmill.errors import ImageTooLarge
from pixelmill.imaging import ops, pipeline
from pixelmill.imaging.encode import encode
from pixelmill.imaging.formats import OUTPUT_FORMATS, ImageFormat
from pixelmill.imaging.placement import Box, check_box, place_artifact
from pixelmill.services.jobs.kinds import JobKind

if TYPE_CHECKING:
    from pixelmill.backends.metadata.records import ImageRecord
    from pixelmill.services.images import ImageService
    from pixelmill.services.jobs.context import Job, JobContext, SubmitContext
    from pixelmill.services.slide_copies import SlideCopies


class OutputSpec(BaseModel):
    """How the result image of each task is encoded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["same", "jpeg", "png", "webp", "avif", "tiff"] = Field(
        "same", description="Result format; 'same' keeps the input's format where writable."
    )
    quality: int | None = Field(None, ge=1, le=100, description="Encoder quality.")
    strip: bool = Field(True, description="Strip EXIF/XMP metadata from results.")
    image: bool = Field(
        True, description="Store the output image; false for measurement-only pipelines."
    )


class Region(BaseModel):
    """A rectangle of each input image, in full-resolution pixels (x to the right, y
    down, origin top-left): the pipeline reads only it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    left: int = Field(..., ge=0, description="x of the region's first column, px.")
    top: int = Field(..., ge=0, description="y of the region's first row, px.")
    width: int = Field(..., ge=1, description="Columns, px.")
    height: int = Field(..., ge=1, description="Rows, px.")

    def box(self) -> Box:
        return Box(self.left, self.top, self.width, self.height)


class PipelineParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: list[dict[str, Any]] = Field(
        ..., description="Steps from the operation registry: [{'op': name, ...params}]."
    )
    output: OutputSpec = OutputSpec()
    region: Region | None = Field(
        None,
        description="Read only this rectangle of each input (inside it, at most "
        "render.max_pixels pixels): how a whole slide is analysed. Object coordinates "
        "in the results are the whole image's.",
    )

    @field_validator("pipeline")
    @classmethod
    def _steps(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # validated completely here (unknown op, bad params, empty, too long) and
        # normalised to each step's canonical JSON
        return [step.to_json() for step in ops.parse_pipeline(value)]

    def steps(self) -> list[ops.Step]:
        return ops.parse_pipeline(self.pipeline)


def _queue(params: PipelineParams) -> ops.Queue:
    return ops.queue_of(params.steps())


def _format(spec: OutputSpec, source: str) -> ImageFormat:
    if spec.format != "same":
        return ImageFormat(spec.format)
    fmt = ImageFormat(source)
    return fmt if fmt in OUTPUT_FORMATS else ImageFormat.PNG


class _Plans:
    """The validated params and steps of each distinct pipeline, parsed once per kind:
    jobs tend to repeat a pipeline and a batch job's tasks share it; both the params
    model and the steps are immutable."""

    def __init__(self, size: int = 256) -> None:
        self._plans: LRUCache[bytes, tuple[PipelineParams, list[ops.Step]]] = LRUCache(size)
        self._lock = threading.Lock()

    def of(self, job: Job) -> tuple[PipelineParams, list[ops.Step]]:
        key = orjson.dumps(job.params, option=orjson.OPT_SORT_KEYS)
        with self._lock:
            plan = self._plans.get(key)
        if plan is None:
            params = PipelineParams.model_validate(job.params)
            plan = (params, params.steps())
            with self._lock:
                self._plans[key] = plan
        return plan


def pipeline_kind(
    images: ImageService,
    *,
    default_quality: int,
    model_check: Callable[[str | None, str], object] | None = None,
    slide_copies: SlideCopies | None = None,
) -> JobKind:
    """The ``pipeline`` kind over ``images`` (sources, operation context, result
    images); ``default_quality``: the encoder quality when the output names none;
    ``model_check(owner, ref)`` raises when the job's owner may not use a ``segment``
    step's model (404, as for an unknown model: checked when the task runs, like the
    model's existence, so submitting costs no lookup). ``slide_copies``: a task reading
    a region of an original on object storage reads a local copy of it (a few tiles of
    a slide), not all its bytes in memory."""
    plans = _Plans()

    def check_models(job: Job, params: PipelineParams) -> None:
        if model_check is None:
            return
        for step in params.pipeline:
            if step.get("op") == "segment":
                model_check(job.owner, str(step.get("model", "nuclei@production")))

    def run_pipeline(job: Job, ctx: JobContext) -> dict[str, Any]:
        """Run the job's pipeline on ``ctx.task.input``; returns the result image id and
        the names of the artifacts the steps produced."""
        params, steps = plans.of(job)
        check_models(job, params)
        assert ctx.task.input is not None
        record = images.record(ctx.task.input)  # records are immutable: a short-lived LRU
        box = _readable(record, params.region, images.settings.max_pixels)
        op_ctx = images.context(record)
        image: Any = _source(images, slide_copies, record, box)
        artifacts: list[str] = []
        seen: set[str] = set()
        for index, step in enumerate(steps):
            ctx.raise_if_cancelled()
            with ctx.step(f"step {index} ({step.op.name})"):
                # one step per call: the decode (first call) cannot see the later steps,
                # and a sequential (top-to-bottom) read fails with "out of order read"
                # under them (a geometric step always; big blurs when libvips' threads
                # drift apart on a busy machine), so a job decodes for random access
                image = pipeline.run(
                    image,
                    [step],
                    op_ctx,
                    auto_orient=index == 0,
                    random_access=True,
                    region=box if index == 0 else None,
                )
            for name in [n for n in op_ctx.artifacts if n not in seen]:
                seen.add(name)
                value = op_ctx.artifacts[name]
                ctx.put_artifact(name, value if box is None else place_artifact(name, value, box))
                artifacts.append(name)
            ctx.progress((index + 1) / (len(steps) + 1), f"step {index} ({step.op.name}) done")
        result: dict[str, Any] = {"image": None, "artifacts": artifacts}
        if box is not None:  # where the result image lies on the input
            result["region"] = box.as_json()
        if params.output.image:
            ctx.raise_if_cancelled()
            fmt = _format(params.output, record.format)
            quality = params.output.quality or default_quality
            with ctx.step("encode"):
                body = encode(image, fmt, quality=quality, strip=params.output.strip)
            stored = ctx.put_image(body, filename=_result_name(record.filename, fmt))
            result["image"] = stored.id
        return result

    return JobKind(
        name="pipeline",
        summary="Run a pipeline of registry operations on each input image (or a region of it).",
        params=PipelineParams,
        queue=_queue,
        run=run_pipeline,
        validate=partial(_check_region, images),
        fan_out="per_input",
        min_inputs=1,
        images_read=lambda params: ops.images_read(params.steps()),
    )


def _source(
    images: ImageService, copies: SlideCopies | None, record: ImageRecord, box: Box | None
) -> Any:
    """What a task decodes: for a region, a local file (a few tiles of a slide are read,
    not all its bytes held in memory); else the original as storage gives it."""
    if box is not None and copies is not None:
        return copies.path(record)
    return images.source_of(record)


def _check_region(images: ImageService, params: PipelineParams, submit: SubmitContext) -> None:
    """A region must lie inside every input and hold at most render.max_pixels (422
    naming ``region``); the input records are read only then."""
    if params.region is None:
        return
    for record in submit.inputs:
        _readable(record, params.region, images.settings.max_pixels)


def _readable(record: ImageRecord, region: Region | None, max_pixels: int) -> Box | None:
    """The box a task reads of ``record`` (``None``: all of it), checked: a region inside
    the image, of at most ``max_pixels``; without one, an image of at most that."""
    if region is not None:
        box = region.box()
        # the region is of the upright image, as viewers show it (EXIF 5-8 turn it)
        upright = record.orientation >= 5
        size = (record.height, record.width) if upright else (record.width, record.height)
        check_box(box, size, max_pixels=max_pixels)
        return box
    if record.width * record.height > max_pixels:
        raise ImageTooLarge(
            "a whole slide over render.max_pixels: a job reads its image whole; name a "
            "region of it (region: {left, top, width, height}), or analyse it tile by "
            "tile (pixelmill slide analyse)",
            max_pixels=max_pixels,
        )
    return None


def _result_name(filename: str | None, fmt: ImageFormat) -> str | None:
    if not filename:
        return None
    stem = filename.rsplit(".", 1)[0]
    return f"{stem}.{fmt.suffix.lstrip('.')}"
