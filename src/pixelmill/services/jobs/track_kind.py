"""The built-in job kind ``track``: segment every frame of a time-lapse and follow the
objects through it.

One task per input image; each input is a multi-frame image (a multi-page TIFF, or the
frames of an animated GIF/WebP), one page a frame. Every frame is segmented — by
registry steps (default: the ``nuclei-fluorescence`` preset; the last step that segments
gives the objects) or by a registered model (``model``, e.g. ``nuclei@production``, split
into objects with the model's own post-processing) — then tracked with
:func:`pixelmill.imaging.tracking.track`. Artifacts, served at
``GET /v1/jobs/{id}/results/{name}?format=csv``: ``objects`` (one row per object per
frame), ``tracks`` (one row per track), and per task ``labels`` (the label images as a
multi-page TIFF, uint32, deflate).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from pixelmill.errors import InvalidParameter
from pixelmill.imaging import ops, pipeline
from pixelmill.ml.registry_rules import parse_ref
from pixelmill.services.jobs.kinds import JobKind
from pixelmill.services.timelapse_frames import (
    TrackingOptions,
    check_frames,
    check_same_size,
    grey_frames,
    read_frames,
    track_frames,
)

if TYPE_CHECKING:
    from pixelmill.backends.metadata.records import ImageRecord
    from pixelmill.services.images import ImageService
    from pixelmill.services.jobs.context import Job, JobContext, SubmitContext

DEFAULT_STEPS: list[dict[str, Any]] = [{"op": "preset", "name": "nuclei-fluorescence"}]


class TrackParams(TrackingOptions):
    pipeline: list[dict[str, Any]] | None = Field(
        None,
        description="Registry steps run on each frame; the last one that segments gives "
        "the objects (default: the nuclei-fluorescence preset).",
    )
    model: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Segment with this registered model instead (name@alias, name:version).",
    )
    scale: float = Field(1.0, ge=0.05, le=8, description="The model's input scale.")
    threshold: float | None = Field(None, gt=0, lt=1, description="The model's probability cut.")

    @field_validator("pipeline")
    @classmethod
    def _steps(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        return [step.to_json() for step in ops.parse_pipeline(value)]

    @field_validator("model")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        # a malformed reference (or a version past any that can exist) is refused at
        # submit, not found out by every retry of the run
        if value is not None:
            try:
                parse_ref(value)
            except InvalidParameter as exc:
                raise ValueError(exc.detail) from None
        return value

    @model_validator(mode="after")
    def _one_segmenter(self) -> TrackParams:
        if self.pipeline is not None and self.model is not None:
            raise ValueError("give either pipeline or model, not both")
        return self

    def steps(self) -> list[ops.Step]:
        return ops.parse_pipeline(self.pipeline or DEFAULT_STEPS)

    def models(self) -> list[str]:
        """Every model reference the job will run."""
        if self.model is not None:
            return [self.model]
        return [
            str(step.get("model", "nuclei@production"))
            for step in (self.pipeline or [])
            if step.get("op") == "segment"
        ]


def _queue(params: TrackParams) -> ops.Queue:
    return "segment" if params.model is not None else ops.queue_of(params.steps())


def track_kind(
    images: ImageService, *, model_check: Callable[[str | None, str], object] | None = None
) -> JobKind:
    """The ``track`` kind over ``images`` (sources, operation context, models);
    ``model_check(owner, ref)`` raises when the job's owner may not use a model."""

    def run(job: Job, ctx: JobContext) -> dict[str, Any]:
        from pixelmill.imaging.analysis.export import labels_to_tiff
        from pixelmill.imaging.tracking import object_table, track_table

        params = TrackParams.model_validate(job.params)
        for ref in params.models() if model_check else []:
            assert model_check is not None
            model_check(job.owner, ref)
        assert ctx.task.input is not None
        record = images.record(ctx.task.input)
        check_frames(record, images)
        labels, grey = _segment_frames(images, record, params, ctx)
        with ctx.step("track"):
            tracks = track_frames(labels, grey, params)
        size = params.pixel_size_um or record.pixel_size_um
        ctx.put_artifact("objects", object_table(tracks, pixel_size_um=size))
        per_track = track_table(
            tracks, pixel_size_um=size, frame_interval_s=params.frame_interval_s
        )
        ctx.put_artifact("tracks", per_track)
        ctx.put_artifact("labels", labels_to_tiff(labels))  # one page a frame
        ctx.progress(1.0, f"{tracks.n_tracks} tracks over {record.pages} frames")
        return {
            "image": record.id,
            "frames": record.pages,
            "objects": len(tracks.objects),
            "tracks": tracks.n_tracks,
            "divisions": len(tracks.children()),
            "max_distance_px": round(tracks.max_distance, 3),
            "pixel_size_um": size,
            "artifacts": ["objects", "tracks", "labels"],
        }

    def check(params: TrackParams, submit: SubmitContext) -> None:
        # a single image or one over the limits is refused at submit (from the records)
        for record in submit.inputs:
            check_frames(record, images)

    return JobKind(
        name="track",
        validate=check,
        summary="Segment every frame of a time-lapse and track the objects "
        "(artifacts 'objects' and 'tracks').",
        params=TrackParams,
        queue=_queue,
        run=run,
        fan_out="per_input",
        min_inputs=1,
        images_read=lambda params: ops.images_read(params.steps()),
    )


def _segment_frames(
    images: ImageService, record: ImageRecord, params: TrackParams, ctx: JobContext
) -> tuple[np.ndarray, np.ndarray]:
    """Label images ``(T, H, W)`` uint32 and the grey frames they came from."""
    from pixelmill.imaging.ops._analysis import get_labels, to_array

    steps = params.steps()
    source = images.source_of(record)
    predictor = (
        images.resolve_model(params.model) if params.model and images.resolve_model else None
    )
    if params.model is not None and predictor is None:
        raise InvalidParameter("track with a model needs the model service, not running here")
    if predictor is not None and predictor.input_spec.task == "timelapse":
        return _timelapse_model(images, record, params, predictor, ctx)
    labels: list[np.ndarray] = []
    grey: list[np.ndarray] = []
    for t in range(record.pages):
        ctx.raise_if_cancelled()
        op_ctx = images.context(record)
        with ctx.step(f"segment frame {t}"):
            frame = pipeline.run(source, [], op_ctx, pages=t, random_access=True)
            pixels, _ = to_array(frame)
            if predictor is not None:
                prediction = predictor.predict(
                    pixels, threshold=params.threshold, scale=params.scale
                )
                if prediction.mask is None:
                    raise InvalidParameter(f"model {params.model!r} is not a segmentation model")
                found = predictor.input_spec.objects(prediction.mask > 0, prediction.distance)
            else:
                pipeline.run(frame, steps, op_ctx)
                found = get_labels(op_ctx, pixels.shape[:2])
                if found is None:
                    raise InvalidParameter(
                        "the pipeline gives no objects: it needs a step that segments "
                        "(segment_nuclei, threshold or a preset that does)"
                    )
        labels.append(np.asarray(found, np.uint32))
        grey.append(pixels if pixels.ndim == 2 else pixels.mean(axis=2, dtype=np.float32))
        ctx.progress((t + 1) / (record.pages + 1), f"frame {t + 1} of {record.pages} segmented")
    check_same_size(grey)  # 422, not retried (a pyramid that passed the submit check)
    return np.stack(labels), np.stack(grey)


def _timelapse_model(
    images: ImageService, record: ImageRecord, params: TrackParams, predictor: Any, ctx: JobContext
) -> tuple[np.ndarray, np.ndarray]:
    """Label images and grey frames from a time-lapse model, which sees every frame with
    its neighbours (:meth:`pixelmill.ml.onnx_model.OnnxModel.predict_frames`)."""
    with ctx.step("read frames"):
        frames = read_frames(images, record, lambda _t: ctx.raise_if_cancelled())
    with ctx.step("segment frames"):
        prediction = predictor.predict_frames(
            frames, threshold=params.threshold, scale=params.scale
        )
    spec = predictor.input_spec
    labels = np.stack([np.asarray(spec.objects(m > 0), np.uint32) for m in prediction.mask])
    grey = grey_frames(frames)
    ctx.progress(record.pages / (record.pages + 1), f"{record.pages} frames segmented")
    return labels, grey
