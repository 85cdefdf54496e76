"""Evaluation as a product feature: score a model version on a stored dataset
(:mod:`pixelmill.ml.evaluation`), keep the scores with the version, and list them.
Runs as the ``evaluate`` job kind (:func:`evaluate_kind`) or in
process (the CLI). Who may: anyone who may read the model, on a dataset of their own
(site admins: any dataset)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from pixelmill.backends.metadata.evaluations import EvaluationRecord, EvaluationRepository
from pixelmill.backends.metadata.models import DatasetRecord, VersionRecord
from pixelmill.errors import Conflict, InvalidParameter
from pixelmill.ml.evaluation import SPLITS
from pixelmill.services.jobs import JobKind
from pixelmill.services.model_registry import Caller
from pixelmill.services.promotion_gate import DEFAULT_METRIC, Gate, check_metric
from pixelmill.services.trainer.service import TrainerService

if TYPE_CHECKING:
    from pixelmill.services.jobs import Job, JobContext, SubmitContext


class EvaluationService:
    def __init__(self, *, trainer: TrainerService, evaluations: EvaluationRepository) -> None:
        self.trainer = trainer
        self.registry = trainer.registry
        self.evaluations = evaluations

    def check(
        self, caller: Caller, name: str, version: int, dataset_id: str, split: str = "all"
    ) -> tuple[VersionRecord, DatasetRecord]:
        """Submit-time checks: the caller may read the model (else 404), the version
        exists, the dataset is theirs (else 404) and is a segmentation dataset, and the
        split asked for has images (else 409)."""
        self.registry.authorize(caller, name, "model.read")
        record = self.registry.models.version(name, version)
        dataset = self.dataset(caller, dataset_id)
        if split not in SPLITS:
            raise InvalidParameter(f"split is one of {', '.join(SPLITS)}, not {split!r}")
        task = record.input_spec.get("task", "segmentation")
        if dataset.task != "segmentation" or task != "segmentation":
            raise InvalidParameter(
                f"evaluation scores segmentation models on segmentation datasets; "
                f"{record.ref} is for {task}, dataset {dataset_id!r} for {dataset.task}"
            )
        if split != "all" and not dataset.split.get(split):
            raise Conflict(
                f"dataset {dataset_id!r} has no images in its {split!r} split: evaluate on "
                "another split, or build the dataset with 0 < val_fraction < 1 and more than "
                "one image",
                dataset=dataset_id,
                split=split,
            )
        return record, dataset

    def dataset(self, caller: Caller, dataset_id: str) -> DatasetRecord:
        """A dataset the caller may evaluate on: their own (site admins: any); another
        user's looks missing (404)."""
        admin = caller.is_admin or (bool(caller.user_id) and self.trainer.is_admin(caller.user_id))
        owner = None if admin or not caller.user_id else caller.user_id
        return self.trainer.datasets.get(dataset_id, owner=owner)

    def gate_dataset(self, caller: Caller, dataset_id: str) -> DatasetRecord:
        """The dataset a promotion gate compares on, when the caller may evaluate on it:
        404 when it does not exist or is not theirs, 422 unless it is for segmentation
        (a gate that could never be satisfied is refused when it is asked for)."""
        dataset = self.dataset(caller, dataset_id)
        if dataset.task != "segmentation":
            raise InvalidParameter(
                f"a promotion gate compares evaluations, which score segmentation datasets; "
                f"dataset {dataset_id!r} is for {dataset.task}"
            )
        return dataset

    def gate(self, caller: Caller, dataset_id: str, metric: str = DEFAULT_METRIC) -> Gate:
        """A promotion gate asked for (``require_better_on``, a gate set on an alias), by
        the API and the command line alike: on a dataset :meth:`gate_dataset` accepts,
        comparing a metric gates know (else 422)."""
        self.gate_dataset(caller, dataset_id)
        return Gate(dataset_id, check_metric(metric))

    def evaluate(
        self,
        caller: Caller,
        name: str,
        version: int,
        dataset_id: str,
        *,
        split: str = "all",
        job_id: str | None = None,
        on_item: Callable[[int, int], None] | None = None,
    ) -> EvaluationRecord:
        """Score ``name:version`` on the dataset and store the scores with the version."""
        from pixelmill.ml import evaluation
        from pixelmill.ml.onnx_model import OnnxModel
        from pixelmill.ml.spec import InputSpec

        record, dataset = self.check(caller, name, version, dataset_id, split)
        parsed = self.trainer.load_dataset(dataset_id)
        items = evaluation.pick(parsed.items, parsed.split, split)
        s = self.trainer.settings
        model = OnnxModel(
            self.registry.artifact(record),
            InputSpec.model_validate(record.input_spec),
            threads=s.inference_threads,
            batching=False,
            overlap=s.tile_overlap,
            tile=s.tile_size or None,
        )
        try:
            scores = evaluation.score(model, items, on_item=on_item)
        finally:
            model.close()
        return self.evaluations.add(
            model=name,
            version=version,
            dataset_id=dataset.id,
            dataset_sha256=dataset.sha256,
            dataset_name=dataset.name,
            split=split,
            scores=scores,
            created_by=caller.user_id or None,
            job_id=job_id,
        )

    def list(
        self, caller: Caller, name: str, version: int | None = None, dataset_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Evaluations of a model (``version``: of one version), newest first."""
        self.registry.authorize(caller, name, "model.read")
        if version is not None:
            self.registry.models.version(name, version)
        return [e.to_json() for e in self.evaluations.list(name, version, dataset_id=dataset_id)]


class EvaluateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Model name.")
    version: int = Field(ge=1, description="The version to score.")
    dataset: str = Field(description="Dataset id (POST /v1/datasets): images with masks.")
    split: str = Field("all", description="all, or the dataset's val or train split.")


def evaluate_kind(service: EvaluationService) -> JobKind:
    """The ``evaluate`` kind: ``POST /v1/jobs {"kind": "evaluate", "params": {"model":
    "nuclei", "version": 3, "dataset": "<id>"}}`` (or ``POST
    /v1/models/{name}/versions/{v}/evaluations``). Progress per image; the result is
    the stored evaluation. A redelivered run returns the evaluation it stored."""

    def check(params: EvaluateParams, submit: SubmitContext) -> None:
        caller = Caller(submit.owner or "", False)
        service.check(caller, params.model, params.version, params.dataset, params.split)

    def run(job: Job, ctx: JobContext) -> dict[str, Any]:
        params = EvaluateParams.model_validate(job.params)
        for done in service.evaluations.list(params.model, params.version):
            if done.job_id == job.id:
                return done.to_json()

        def on_item(done: int, total: int) -> None:
            ctx.raise_if_cancelled()
            ctx.progress(done / total, f"{done}/{total} images scored")

        record = service.evaluate(
            Caller(job.owner or "", False),
            params.model,
            params.version,
            params.dataset,
            split=params.split,
            job_id=job.id,
            on_item=on_item,
        )
        return record.to_json()

    return JobKind(
        name="evaluate",
        run=run,
        params=EvaluateParams,
        queue="segment",
        validate=check,
        time_limit_s=3600,
        max_retries=1,
        summary="Score a model version on a dataset (Dice, object F1, mean AP, PQ, counts).",
    )
