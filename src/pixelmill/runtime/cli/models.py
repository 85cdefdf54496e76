"""``pixelmill models ...``: the model registry (list, show, compare, evaluate, promote,
gate, rollback, delete, audit, register, grant)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pixelmill.runtime.cli._common import (
    CleanErrors,
    folder_to_zip,
    open_container,
    print_json,
    quiet_vips,
)

#: the scores ``models evaluate`` prints as a table (all are stored; --json shows them)
SHOWN = ("dice", "precision@0.5", "recall@0.5", "f1@0.5", "f1@0.75", "map", "pq", "count_error")


@click.group("models", cls=CleanErrors)
def models_group() -> None:
    """The model registry: list, show, compare, promote, gate, rollback, delete, register, grant."""


def _registry(data_dir: str | None) -> tuple[Any, Any]:
    c = open_container(data_dir)
    return c, c.models


@models_group.command("list")
@click.option("--data-dir", default=None)
def models_list(data_dir: str | None) -> None:
    """Models with their aliases and newest version."""
    c, registry = _registry(data_dir)
    try:
        for m in registry.list():
            aliases = " ".join(f"{a}={v}" for a, v in sorted(m["aliases"].items()))
            click.echo(
                f"{m['name']}\t{m['task']}\tversions={m['versions']}\tlatest={m['latest']}\t{aliases}"
            )
    finally:
        c.close()


@models_group.command("show")
@click.argument("ref")
@click.option("--data-dir", default=None)
def models_show(ref: str, data_dir: str | None) -> None:
    """A model (NAME) or one version (NAME:N, NAME@ALIAS) as JSON."""
    c, registry = _registry(data_dir)
    try:
        if ":" in ref or "@" in ref:
            print_json(registry.resolve(ref).to_json())
        else:
            print_json(registry.describe(ref))
    finally:
        c.close()


@models_group.command("compare")
@click.argument("name")
@click.argument("versions", nargs=-1, type=int)
@click.option("--data-dir", default=None)
def models_compare(name: str, versions: tuple[int, ...], data_dir: str | None) -> None:
    """Compare versions' metrics (all versions when none are given)."""
    c, registry = _registry(data_dir)
    try:
        print_json(registry.compare(name, list(versions) or None))
    finally:
        c.close()


@models_group.command("evaluate")
@click.argument("ref")
@click.option("--dataset", required=True, help="A dataset id, or a folder/zip of images + masks.")
@click.option("--split", type=click.Choice(["all", "val", "train"]), default="all")
@click.option("--json", "as_json", is_flag=True, help="Print the stored evaluation as JSON.")
@click.option("--data-dir", default=None)
def models_evaluate(
    ref: str, dataset: str, split: str, as_json: bool, data_dir: str | None
) -> None:
    """Score REF (NAME@ALIAS, NAME:N) on a dataset: pixel Dice, object precision/recall/F1
    at IoU 0.5 and 0.75, mean AP (IoU 0.5-0.9), panoptic quality, count error. The
    scores are stored with the version (docs/ml.md)."""
    from pixelmill.services.model_registry import Caller

    quiet_vips()
    c, registry = _registry(data_dir)
    try:
        version = registry.resolve(ref)
        if Path(dataset).exists():
            record, _ = c.trainer.add_dataset(
                folder_to_zip(Path(dataset)), name=Path(dataset).name, actor="cli"
            )
            dataset = record.id
        done = c.evaluation.evaluate(
            Caller("", True), version.model, version.version, dataset, split=split
        )
        if as_json:
            print_json(done.to_json())
            return
        click.echo(f"{version.ref} on {done.dataset_name} ({dataset}, {split}): {done.id}")
        s = done.scores
        click.echo(
            f"images {s['images']}\tobjects true {s['objects_true']}\tfound {s['objects_pred']}"
        )
        for key in SHOWN:
            click.echo(f"{key}\t{s[key]:.4f}")
    finally:
        c.close()


@models_group.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--alias", default="production", show_default=True)
@click.option("--note", default=None)
@click.option(
    "--require-better-on",
    "dataset",
    default=None,
    help="A dataset id: refuse unless VERSION beats the alias's holder on it.",
)
@click.option("--metric", default="f1@0.5", show_default=True, help="The score compared.")
@click.option("--data-dir", default=None)
def models_promote(
    name: str,
    version: int,
    alias: str,
    note: str | None,
    dataset: str | None,
    metric: str,
    data_dir: str | None,
) -> None:
    """Point NAME@ALIAS at VERSION (audited), through the alias's promotion gate."""
    from pixelmill.services.model_registry import Caller

    c, registry = _registry(data_dir)
    try:
        # the API's check: the dataset exists (an operator sees every one) and is for
        # segmentation, the metric is one a gate compares
        gate = c.evaluation.gate(Caller("", True), dataset, metric) if dataset else None
        print_json(
            registry.promote(name, version, alias, actor="cli", note=note, gate=gate).to_json()
        )
    finally:
        c.close()


@models_group.command("gate")
@click.argument("name")
@click.option("--alias", default="production", show_default=True)
@click.option("--dataset", default=None, help="Gate ALIAS on this dataset id (or replace it).")
@click.option("--metric", default="f1@0.5", show_default=True, help="The score compared.")
@click.option("--remove", is_flag=True, help="Remove the gate on ALIAS.")
@click.option("--data-dir", default=None)
def models_gate(
    name: str, alias: str, dataset: str | None, metric: str, remove: bool, data_dir: str | None
) -> None:
    """Promotion gates of NAME: list them; with --dataset, every promotion to ALIAS must
    beat its holder on that dataset (audited); --remove ends that (audited)."""
    from pixelmill.services import promotion_gate
    from pixelmill.services.model_registry import Caller

    if dataset and remove:
        raise click.UsageError("give --dataset (set the gate) or --remove, not both")
    c, registry = _registry(data_dir)
    try:
        models, evaluations = registry.models, registry.evaluations
        if remove:
            promotion_gate.delete_gate(models, evaluations, name, alias, actor="cli")
            click.echo(f"removed the gate on {name}@{alias}")
        elif dataset:
            gate = c.evaluation.gate(Caller("", True), dataset, metric)
            record = promotion_gate.set_gate(models, evaluations, name, alias, gate, actor="cli")
            print_json(record.to_json())
        else:
            models.get_model(name)
            print_json([g.to_json() for g in evaluations.gates(name)])
    finally:
        c.close()


@models_group.command("rollback")
@click.argument("name")
@click.option("--alias", default="production", show_default=True)
@click.option(
    "--to", "to_version", type=int, default=None, help="Default: before the last promotion."
)
@click.option("--data-dir", default=None)
def models_rollback(name: str, alias: str, to_version: int | None, data_dir: str | None) -> None:
    """Move NAME@ALIAS back (audited)."""
    c, registry = _registry(data_dir)
    try:
        print_json(registry.rollback(name, alias, actor="cli", to_version=to_version).to_json())
    finally:
        c.close()


@models_group.command("delete")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--data-dir", default=None)
def models_delete(name: str, version: int, data_dir: str | None) -> None:
    """Delete NAME:VERSION (refused while an alias points at it)."""
    c, registry = _registry(data_dir)
    try:
        registry.delete_version(name, version, actor="cli")
        click.echo(f"deleted {name}:{version}")
    finally:
        c.close()


@models_group.command("audit")
@click.argument("name")
@click.option("--data-dir", default=None)
def models_audit(name: str, data_dir: str | None) -> None:
    """The audit trail of NAME, oldest first."""
    c, registry = _registry(data_dir)
    try:
        for a in registry.audit(name):
            moved = f"{a.from_version}->{a.to_version}"
            click.echo(
                f"{a.at.isoformat()}\t{a.action}\t{a.alias or '-'}\t{moved}\t{a.actor or '-'}\t{a.note or ''}"
            )
    finally:
        c.close()


@models_group.command("register")
@click.argument("onnx_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--card",
    "card_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Model card JSON (as written by `pixelmill train --card`).",
)
@click.option("--name", default=None, help="Model name (default: the card's).")
@click.option("--alias", default=None)
@click.option("--data-dir", default=None)
def models_register(
    onnx_file: Path,
    card_file: Path | None,
    name: str | None,
    alias: str | None,
    data_dir: str | None,
) -> None:
    """Register an ONNX file (with its card) as the next version of a model."""
    card = (
        json.loads(card_file.read_text()) if card_file else {"input_spec": {"task": "segmentation"}}
    )
    if name:
        card["name"] = name
    if "name" not in card:
        raise click.BadParameter("give --name or a card with a name")
    c, registry = _registry(data_dir)
    try:
        version = registry.register_card(card, onnx_file.read_bytes(), actor="cli")
        if alias:
            registry.promote(version.model, version.version, alias, actor="cli")
        print_json(version.to_json())
    finally:
        c.close()


@models_group.command("grant")
@click.argument("name")
@click.argument("username")
@click.argument("level", type=click.Choice(["read", "edit", "manage", "none"]))
@click.option("--data-dir", default=None)
def models_grant(name: str, username: str, level: str, data_dir: str | None) -> None:
    """Give USERNAME read, edit or manage on model NAME (none: revoke), as an operator."""
    from pixelmill.backends.metadata.events import Actor
    from pixelmill.services.model_registry import Caller

    c, registry = _registry(data_dir)
    try:
        user = c.users.by_username(username)
        operator = Caller("", True)
        if level == "none":
            registry.revoke(operator, name, user.id, actor=Actor())
            click.echo(f"{username} has no level on {name} any more")
        else:
            print_json(registry.grant(operator, name, user.id, level, actor=Actor()).to_json())
    finally:
        c.close()
