"""The promotion gate: an alias moves to a candidate version only when the candidate
beats the alias's current holder on a named evaluation dataset and metric (both
evaluated on it, the same split). A gate comes from the request
(``require_better_on=DATASET``) or is set on the model's alias
(``PUT /v1/models/{name}/gates/{alias}``). Refusals are audited as ``gate.refused``;
a promotion that passed carries the comparison in its audit note. A gate whose dataset
has been deleted still decides on the evaluations stored before; one it would need can no
longer be made, so the promotion is refused (409) saying to replace or remove the gate."""

from __future__ import annotations

from dataclasses import dataclass

from pixelmill.backends.metadata.evaluations import EvaluationRepository, GateRecord
from pixelmill.backends.metadata.models import DatasetRepository, ModelRepository
from pixelmill.errors import Conflict, InvalidParameter, NotFound
from pixelmill.ml.registry_rules import check_alias
from pixelmill.ml.scores import GATE_METRICS, beats

#: the metric a gate compares unless told otherwise
DEFAULT_METRIC = "f1@0.5"


@dataclass(frozen=True)
class Gate:
    dataset_id: str
    metric: str = DEFAULT_METRIC
    #: set on the alias (``PUT .../gates/{alias}``), not asked for by one promotion
    standing: bool = False


def check_metric(metric: str) -> str:
    if metric not in GATE_METRICS:
        raise InvalidParameter(
            f"metric is one of {', '.join(GATE_METRICS)}, not {metric!r}",
            metrics=list(GATE_METRICS),
        )
    return metric


def apply(
    models: ModelRepository,
    evaluations: EvaluationRepository,
    name: str,
    version: int,
    alias: str,
    gate: Gate | None,
    *,
    actor: str | None,
    note: str | None,
) -> str | None:
    """The audit note of promoting ``name:version`` to ``alias`` through ``gate`` (else
    the gate set on the alias, if any): ``note`` plus the comparison; 409 if it loses."""
    if gate is None:
        stored = evaluations.gate(name, alias)
        if stored is None:
            return note
        gate = Gate(stored.dataset_id, stored.metric, standing=True)
    verdict = passes(models, evaluations, name, version, alias, gate, actor=actor)
    return f"{note}; {verdict}" if note else verdict


def passes(
    models: ModelRepository,
    evaluations: EvaluationRepository,
    name: str,
    version: int,
    alias: str,
    gate: Gate,
    *,
    actor: str | None,
) -> str:
    """The audit note of a promotion of ``name:version`` to ``alias`` that passes
    ``gate``; otherwise 409 naming both scores (audited as ``gate.refused``)."""
    check_metric(gate.metric)
    models.version(name, version)
    try:
        holder = models.alias(name, alias).version
    except NotFound:
        return f"gate {gate.metric} on dataset {gate.dataset_id}: no holder of @{alias} yet"
    if holder == version:
        return f"gate {gate.metric}: {name}:{version} already holds @{alias}"
    mine = evaluations.latest(name, version, gate.dataset_id)
    if mine is None:
        _check_dataset(models, name, alias, gate)
        raise Conflict(
            f"the gate on {name}@{alias} needs an evaluation of {name}:{version} on dataset "
            f"{gate.dataset_id!r}: evaluate it first (POST /v1/models/{name}/versions/"
            f"{version}/evaluations)",
            dataset=gate.dataset_id,
            metric=gate.metric,
            missing=[version],
        )
    theirs = next(
        (
            e
            for e in evaluations.list(name, holder, dataset_id=gate.dataset_id)
            if e.split == mine.split
        ),
        None,
    )
    if theirs is None:
        _check_dataset(models, name, alias, gate)
        raise Conflict(
            f"the gate on {name}@{alias} needs an evaluation of the holder {name}:{holder} on "
            f"dataset {gate.dataset_id!r} ({mine.split} split): evaluate it first",
            dataset=gate.dataset_id,
            metric=gate.metric,
            missing=[holder],
        )
    a, b = float(mine.scores[gate.metric]), float(theirs.scores[gate.metric])
    verdict = (
        f"{gate.metric} on dataset {gate.dataset_id} ({mine.split}): "
        f"{name}:{version} {a:.4f} vs {name}:{holder} {b:.4f}"
    )
    if not beats(mine.scores, theirs.scores, gate.metric):
        models.record_event(name, "gate.refused", version=version, note=verdict, actor=actor)
        raise Conflict(
            f"{name}:{version} does not beat {name}:{holder} (@{alias}): {verdict}",
            dataset=gate.dataset_id,
            metric=gate.metric,
            candidate={"version": version, "score": a, "evaluation": mine.id},
            holder={"version": holder, "score": b, "evaluation": theirs.id},
        )
    return "gate passed: " + verdict


def _check_dataset(models: ModelRepository, name: str, alias: str, gate: Gate) -> None:
    """409 when an evaluation the gate needs can never be made: its dataset is gone."""
    try:
        DatasetRepository(models.db).get(gate.dataset_id)
        return
    except NotFound:
        pass
    where = f"/v1/models/{name}/gates/{alias}"
    fix = (
        f"set the gate on another dataset (PUT {where}, or `pixelmill models gate {name} "
        f"--alias {alias} --dataset ID`) or remove it (DELETE {where}, or `pixelmill models "
        f"gate {name} --alias {alias} --remove`)"
        if gate.standing
        else "gate on another dataset"
    )
    raise Conflict(
        f"the gate on {name}@{alias} compares on dataset {gate.dataset_id!r}, which no longer "
        f"exists, so the evaluation it needs cannot be made: {fix}",
        dataset=gate.dataset_id,
        metric=gate.metric,
        dataset_deleted=True,
    )


def set_gate(
    models: ModelRepository,
    evaluations: EvaluationRepository,
    name: str,
    alias: str,
    gate: Gate,
    *,
    actor: str | None,
) -> GateRecord:
    """Require every promotion to ``name@alias`` to pass ``gate`` (audited)."""
    check_alias(alias)
    check_metric(gate.metric)
    models.get_model(name)
    record = evaluations.set_gate(
        name, alias, dataset_id=gate.dataset_id, metric=gate.metric, actor=actor
    )
    note = f"@{alias}: {gate.metric} on dataset {gate.dataset_id}"
    models.record_event(name, "gate.set", version=None, note=note, actor=actor)
    return record


def delete_gate(
    models: ModelRepository,
    evaluations: EvaluationRepository,
    name: str,
    alias: str,
    *,
    actor: str | None,
) -> None:
    evaluations.delete_gate(name, alias)
    models.record_event(name, "gate.delete", version=None, note=f"@{alias}", actor=actor)
