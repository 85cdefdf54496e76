"""Analyses: run a preset or a model on a study's images as ONE pipeline job (one task
per image, owned by the caller), and keep the analysis record in step with the job.

The output (labels, objects, overlay) is the job's: read-only. The per-image summary
(state, object count, the artifacts each image has) is stored when the job ends, by the
process that records its end (a worker, or an embedded gateway), with the study's
``analysis.done``/``failed``/``cancelled`` event: nobody has to read it first. While it
runs, reading or watching the study refreshes it (progress events); that refresh is also
the safety net should the end's update fail. A finished analysis never changes again."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from pixelmill.backends.metadata.analyses import AnalysisRecord, AnalysisRepository
from pixelmill.errors import InvalidParameter, NotFound

if TYPE_CHECKING:
    from pixelmill.backends.metadata.events import Actor
    from pixelmill.backends.metadata.jobs import JobRecord
    from pixelmill.services.jobs.artifacts import Artifact
    from pixelmill.services.jobs.service import JobService

#: job state -> analysis status; task state -> the image's analysis_status
ANALYSIS_STATUS = {
    "queued": "running",
    "running": "running",
    "succeeded": "done",
    "failed": "failed",
    "cancelled": "cancelled",
}
IMAGE_STATUS = {"succeeded": "done", "failed": "failed", "cancelled": "failed"}


class ModelAnalysisParams(BaseModel):
    """The ``params`` of a model analysis: the segment op's, plus the object size filter
    (its JSON Schema is what the run dialog builds its form from)."""

    model_config = ConfigDict(extra="forbid", title="Model analysis")

    threshold: float | None = Field(
        None, gt=0, lt=1, description="Probability cut (default: the model's own)."
    )
    scale: float = Field(
        1.0, ge=0.05, le=8, description="Resize the input first (0.5: objects twice the size)."
    )
    min_area: int = Field(1, ge=1, description="Smallest object kept, px.")
    max_area: int | None = Field(None, ge=1, description="Largest object kept, px.")


#: params of a model analysis (the segment op's, plus the object size filter)
MODEL_PARAMS = frozenset(ModelAnalysisParams.model_fields)


def preset_pipeline(name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The job pipeline of a preset analysis; ``params``: ``{"overrides": {op: {...}}}``."""
    unknown = set(params) - {"overrides"}
    if unknown:
        raise InvalidParameter(
            f"a preset analysis takes only 'overrides'; got {', '.join(sorted(unknown))}"
        )
    return [{"op": "preset", "name": name, "overrides": params.get("overrides") or {}}]


def model_pipeline(model: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The job pipeline of a model analysis: the model's mask, split into objects (one
    per connected component), measured, and their contours drawn on the image."""
    unknown = set(params) - MODEL_PARAMS
    if unknown:
        raise InvalidParameter(
            f"a model analysis takes {', '.join(sorted(MODEL_PARAMS))}; "
            f"got {', '.join(sorted(unknown))}"
        )
    segment: dict[str, Any] = {"op": "segment", "model": model, "output": "mask"}
    for name in ("threshold", "scale"):
        if params.get(name) is not None:
            segment[name] = params[name]
    objects: dict[str, Any] = {
        "op": "segment_nuclei",
        "foreground": "bright",
        "threshold": 0.5,
        "sigma": 0,
        "opening_radius": 0,
        "split": False,
        "min_snr": 0,
        "min_area": params.get("min_area") or 1,
    }
    if params.get("max_area") is not None:
        objects["max_area"] = params["max_area"]
    return [
        segment,
        objects,
        {"op": "measure"},
        {"op": "overlay", "style": "contour", "colour": "00ffff"},
    ]


class Analyses:
    def __init__(self, repo: AnalysisRepository, jobs: JobService) -> None:
        self.repo = repo
        self.jobs = jobs

    def run(
        self,
        actor: Actor,
        study_id: str,
        *,
        owner: str,
        preset: str | None,
        model: str | None,
        params: dict[str, Any],
        image_ids: list[str],
        region: dict[str, int] | None = None,
        can_read: Callable[[str], object] | None = None,
    ) -> AnalysisRecord:
        """Submit the job and record the analysis (422 for bad params, whose job is
        never created). ``region`` (``{left, top, width, height}``, full-resolution
        pixels): analyse only that rectangle of each image; the analysis keeps it.
        ``can_read``: raises ``NotFound`` for an image the caller may not read (another
        image the params name, e.g. a stain reference: ``JobService.submit``)."""
        if (preset is None) == (model is None):
            raise InvalidParameter("name exactly one of 'preset' and 'model'")
        if preset is not None:
            kind, target, steps = "preset", preset, preset_pipeline(preset, params)
        else:
            assert model is not None
            kind, target, steps = "model", model, model_pipeline(model, params)
        job_params: dict[str, Any] = {"pipeline": steps, "output": {"format": "png"}}
        if region is not None:
            job_params["region"] = region
        job, _ = self.jobs.submit(
            kind="pipeline", params=job_params, inputs=image_ids, owner=owner, can_read=can_read
        )
        try:
            return self.repo.create(
                actor,
                study_id,
                job_id=job.id,
                kind=kind,
                target=target,
                params=params,
                image_ids=image_ids,
                summary={"region": region} if region is not None else {},
            )
        except BaseException:
            self.jobs.cancel(job.id)  # no record, no job: never leave half an analysis
            raise

    def refresh(self, record: AnalysisRecord) -> AnalysisRecord:
        """The analysis with its status and per-image summary as the job has them now."""
        if record.finished or record.job_id is None:
            return record
        job = self.jobs.get(record.job_id)
        known: dict[str, Any] = record.summary.get("images", {})
        images: dict[str, Any] = {}
        objects = 0
        for task in self.jobs.tasks(record.job_id):
            image_id = task.input or ""
            if image_id not in record.image_ids:  # deleted since: its results went too
                continue
            entry: dict[str, Any] = {
                "task": task.idx,
                "state": task.state,
                "progress": round(task.progress, 4),
                "error": task.error,
            }
            if task.state == "succeeded":
                old = known.get(image_id) or {}
                count = (
                    old["object_count"]
                    if old.get("state") == "succeeded"
                    else self._object_count(record.job_id, task.idx)
                )
                entry["object_count"] = count
                entry["result_image"] = task.result_image
                entry["artifacts"] = sorted({a["name"] for a in task.artifacts or []})
                objects += count or 0
            images[image_id] = entry
        status = ANALYSIS_STATUS[job.state]
        summary = {"job_state": job.state, "object_count": objects, "images": images}
        if "region" in record.summary:  # where on each image the results lie
            summary["region"] = record.summary["region"]
        if status == record.status and summary == record.summary:
            return record
        image_status = {
            image_id: IMAGE_STATUS.get(e["state"], "running") for image_id, e in images.items()
        }
        return self.repo.refresh(record, status=status, summary=summary, image_status=image_status)

    def jobs_finished(self, jobs: Sequence[JobRecord]) -> None:
        """``jobs`` ended: for each that runs an analysis, store the analysis's status
        and per-image summary now and write the study's event (subscribed to the job
        system's :class:`~pixelmill.services.jobs.deps.FinishedJobs`; one look-up for
        the lot — most jobs are no analysis)."""
        for record in self.repo.for_jobs([job.id for job in jobs]):
            self.refresh(record)

    def refresh_running(self, study_id: str) -> None:
        """Bring the study's running analyses up to date with their jobs: their progress
        and the images' analysis status change, and each change is an event the study's
        live stream carries (``analysis.progress``...)."""
        for record in self.repo.running_for_study(study_id):
            try:
                self.refresh(record)
            except NotFound:  # its job was purged by retention
                continue

    def _object_count(self, job_id: str, idx: int) -> int | None:
        try:
            art = self.jobs.artifact(job_id, "summary", "json", idx)
        except NotFound:
            return None
        value = orjson.loads(art.body).get("object_count")
        return None if value is None else int(value)

    def artifact(
        self, record: AnalysisRecord, image_id: str, name: str, fmt: Any = None
    ) -> Artifact:
        """One image's artifact (``labels``, ``objects``, ``summary`` ...) of the job."""
        entry = self._finished_entry(record, image_id)
        if name not in entry.get("artifacts", []):
            raise NotFound(f"the analysis has no {name!r} for image {image_id!r}")
        assert record.job_id is not None
        return self.jobs.artifact(record.job_id, name, fmt, int(entry["task"]))

    def result_image(self, record: AnalysisRecord, image_id: str) -> str:
        """The id of the overlay image the analysis made of ``image_id``."""
        found = self._finished_entry(record, image_id).get("result_image")
        if not found:
            raise NotFound(f"the analysis made no image of {image_id!r}")
        return str(found)

    @staticmethod
    def _finished_entry(record: AnalysisRecord, image_id: str) -> dict[str, Any]:
        entry = record.summary.get("images", {}).get(image_id)
        if entry is None or entry.get("state") != "succeeded":
            raise NotFound(f"the analysis has no finished result for image {image_id!r}")
        return dict(entry)
