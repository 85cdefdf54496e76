"""Datasets and training: validate and store datasets, run the training loop of
:mod:`pixelmill.ml.training`, export to ONNX, check it, and register the version.

torch is imported only inside :meth:`TrainerService.train` (through the ml core)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from pixelmill.backends.metadata.models import DatasetRecord, DatasetRepository, VersionRecord
from pixelmill.backends.storage.base import Storage
from pixelmill.errors import (
    BackendUnavailable,
    EmptyInput,
    ImageTooLarge,
    InvalidParameter,
    QuotaExceeded,
)
from pixelmill.imaging.ops import validation_errors
from pixelmill.ml import datasets as ds_core
from pixelmill.ml import registry_rules as rules
from pixelmill.ml.dataset_limits import DatasetLimits
from pixelmill.ml.spec import TrainSpec
from pixelmill.services.model_registry import Caller, ModelRegistry
from pixelmill.services.workspace.model_rules import ModelAction
from pixelmill.settings import MLSettings

if TYPE_CHECKING:
    from pixelmill.services.workspace.quotas import Quotas, TrainingMeter

log = logging.getLogger(__name__)


def parse_spec(raw: dict[str, Any] | None) -> TrainSpec:
    """Validate a training spec, or raise InvalidParameter (422) with per-field errors."""
    try:
        return TrainSpec.model_validate(raw or {})
    except ValidationError as exc:
        raise InvalidParameter(
            "invalid training spec", errors=validation_errors(exc, prefix="spec.")
        ) from None


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def _stop_when(
    should_stop: Callable[[], bool] | None, meter: TrainingMeter | None
) -> Callable[[], bool] | None:
    """Stop when cancelled or when the user's training minutes are used up."""
    if meter is None:
        return should_stop
    return lambda: bool(should_stop and should_stop()) or meter.exhausted()


class TrainerService:
    def __init__(
        self,
        *,
        storage: Storage,
        datasets: DatasetRepository,
        registry: ModelRegistry,
        settings: MLSettings,
        limits: DatasetLimits | None = None,
        is_admin: Callable[[str], bool] | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self.storage = storage
        #: users' quotas: stored bytes (datasets), epochs and training minutes
        self.quotas = quotas
        #: whether a user id is a site admin's (for training runs' submit checks)
        self.is_admin = is_admin or (lambda _user_id: False)
        self.datasets = datasets
        self.registry = registry
        self.settings = settings
        #: what one dataset archive may expand to (checked before decoding)
        self.limits = limits or DatasetLimits(max_total_bytes=settings.max_dataset_bytes)

    # -- datasets -----------------------------------------------------------------------
    def add_dataset(
        self,
        data: bytes,
        *,
        name: str | None = None,
        task: str | None = None,
        val_fraction: float = 0.15,
        seed: int = 0,
        actor: str | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> tuple[DatasetRecord, bool]:
        """Validate a dataset archive completely (422 naming the offending files), then
        store it content-addressed and record its train/val split. The dataset belongs
        to ``actor``: the same bytes from another uploader make a dataset of their own.
        ``provenance`` (where the data came from) is kept in the summary."""
        if not data:
            raise EmptyInput("the dataset upload is empty")
        if len(data) > self.settings.max_dataset_bytes:
            raise ImageTooLarge(
                f"the dataset is larger than {self.settings.max_dataset_bytes} bytes"
            )
        if task not in (None, "segmentation", "classification", "graph", "timelapse"):
            raise InvalidParameter(
                f"task must be segmentation, classification, graph or timelapse, not {task!r}"
            )
        if not 0 <= val_fraction < 1:
            raise InvalidParameter("val_fraction must be in [0, 1)")
        digest = hashlib.sha256(data).hexdigest()
        existing = self.datasets.find_by_sha256(digest, owner=actor)
        if existing is not None:
            return existing, False
        parsed = ds_core.parse(
            data,
            task=task,  # type: ignore[arg-type]
            val_fraction=val_fraction,
            seed=seed,
            limits=self.limits,
        )
        key = f"datasets/{digest[:2]}/{digest}.zip"
        self.storage.put(key, data, content_type="application/zip")
        try:
            record, created = self.datasets.add(
                max_stored_bytes=self.quotas.stored_limit(actor or "") if self.quotas else None,
                sha256=digest,
                name=(name or f"dataset-{digest[:8]}")[:200],
                task=parsed.task,
                size_bytes=len(data),
                items=len(parsed.items),
                classes=parsed.classes,
                split=parsed.split,
                summary={
                    **parsed.summary(),
                    "val_fraction": val_fraction,
                    "split_seed": seed,
                    **({"provenance": provenance} if provenance else {}),
                },
                created_by=actor,
            )
        except BaseException as exc:
            # no stored archive without a dataset row (unless another upload of the
            # same bytes, anyone's, recorded one)
            with contextlib.suppress(Exception):
                if not self.datasets.sha256_in_use(digest):
                    self.storage.delete(key)
            if isinstance(exc, QuotaExceeded) and self.quotas is not None:
                self.quotas.denied(actor or "", exc)
            raise
        if not self.storage.exists(key):
            # another user's delete of the same bytes ran between our put and our row
            self.storage.put(key, data, content_type="application/zip")
        return record, created

    def load_dataset(self, dataset_id: str) -> ds_core.Dataset:
        """A stored dataset, parsed, with its recorded split."""
        record = self.datasets.get(dataset_id)
        parsed = ds_core.parse(
            self.storage.get(record.storage_key),
            task=record.task,  # type: ignore[arg-type]
            limits=self.limits,
        )
        parsed.split = record.split
        return parsed

    def delete_dataset(self, dataset_id: str, *, owner: str | None = None) -> DatasetRecord:
        """Delete ``owner``'s dataset (``None``: anyone's); the stored archive goes when
        no other dataset holds the same bytes."""
        record = self.datasets.delete(dataset_id, owner=owner)
        if not self.datasets.sha256_in_use(record.sha256):
            self.storage.delete(record.storage_key)
        return record

    # -- training -----------------------------------------------------------------------
    def check(
        self,
        model: str,
        dataset_id: str,
        spec: TrainSpec,
        *,
        owner: str | None = None,
        alias: str | None = None,
    ) -> DatasetRecord:
        """Submit-time checks: model name, dataset exists and fits the task, torch present;
        with ``owner`` (a user id; not an admin's), the dataset is theirs (else 404) and
        they may register versions of ``model`` (or create it) and move ``alias``; the
        owner's quotas allow ``spec.epochs`` and they have training minutes left."""
        rules.check_name(model)
        scoped = bool(owner) and not self.is_admin(owner or "")
        record = self.datasets.get(dataset_id, owner=owner if scoped else None)
        if scoped:
            caller = Caller(owner or "", False)
            action: ModelAction = "model.promote" if alias else "model.register"
            self.registry.authorize(caller, model, action)
        if record.task != spec.task:
            raise InvalidParameter(
                f"dataset {dataset_id!r} is for {record.task}, the spec asks for {spec.task}"
            )
        if spec.task == "timelapse":
            from pixelmill.ml.sequence_task import fit_problems

            summary = record.summary or {}
            problems = fit_problems(spec, summary.get("frames", []), summary.get("shapes", []))
            if problems:
                raise InvalidParameter(
                    f"the spec does not fit dataset {dataset_id!r}: " + "; ".join(problems)
                )
        if self.quotas is not None:
            self.quotas.check_training(owner, spec.epochs)
        if not torch_available():
            raise BackendUnavailable(
                "training needs PyTorch, which is not installed here: pip install 'pixelmill[train]'"
            )
        return record

    def train(
        self,
        model: str,
        dataset_id: str,
        spec: TrainSpec,
        *,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_checkpoint: Callable[[int, bytes], None] | None = None,
        on_epoch: Callable[[bytes], None] | None = None,
        resume: bytes | None = None,
        actor: str | None = None,
        job_id: str | None = None,
        command: str = "",
        alias: str | None = None,
        hold_out_val: bool = False,
    ) -> VersionRecord:
        """Train, export to ONNX, check ONNX against torch, register a new version.
        ``on_epoch``/``resume``: the resumable training state (see
        :func:`pixelmill.ml.training.train`). ``hold_out_val``: the dataset's ``val``
        split stays unseen (no validation, no early stopping or checkpoint choice on
        it), so that it can judge the version afterwards."""
        from pixelmill.ml import export, training
        from pixelmill.ml.card import model_card

        self.check(model, dataset_id, spec, owner=actor, alias=alias)
        dataset = self.load_dataset(dataset_id)
        held_out = dataset.split.get("val", []) if hold_out_val else []
        if hold_out_val:
            dataset.split = {"train": dataset.split.get("train", []), "val": []}
        if spec.threads is None and self.settings.train_threads:
            spec = spec.model_copy(update={"threads": self.settings.train_threads})
        meter = self.quotas.training_meter(actor, job_id or "") if self.quotas and job_id else None
        try:
            result = training.train(
                spec,
                dataset,
                on_progress,
                _stop_when(should_stop, meter),
                on_checkpoint=on_checkpoint,
                on_epoch=on_epoch,
                resume=resume,
            )
        except training.TrainingCancelled:
            if meter is not None and meter.used_up:
                raise meter.error() from None
            raise
        finally:
            if meter is not None:
                meter.close()
        if should_stop is not None and should_stop():  # cancelled after the last step
            raise training.TrainingCancelled("cancelled after training, before registering")
        onnx_bytes = export.to_onnx(result.network, result.input_spec)
        diff = export.check(onnx_bytes, result.network, result.input_spec)
        card = model_card(
            model, spec, result, dataset, onnx_bytes, diff, command or f"job {job_id}"
        )
        card["dataset"]["id"] = dataset_id
        if held_out:  # never seen in training or tuning: the split that judges it
            card["dataset"]["held_out"] = held_out
        return self.registry.register_card(
            card, onnx_bytes, actor=actor, job_id=job_id, manager=actor or None
        )
