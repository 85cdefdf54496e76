"""ML commands of the ``pixelmill`` CLI: datasets, training, the model registry."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import click

#: spec fields settable from the command line, with their click types
_SPEC_OPTIONS: list[tuple[str, Any, str]] = [
    ("task", click.Choice(["segmentation", "classification"]), "segmentation or classification"),
    ("arch", click.Choice(["unet", "cnn"]), "network (default from task)"),
    ("depth", int, "U-Net levels / CNN blocks"),
    ("width", int, "channels of the first level"),
    ("epochs", int, "most epochs"),
    ("steps-per-epoch", int, "optimizer steps per epoch"),
    ("batch-size", int, "images per step"),
    ("patch", int, "training crop side (px)"),
    ("lr", float, "learning rate"),
    ("seed", int, "random seed (runs are repeatable)"),
    ("patience", int, "early stopping patience (epochs)"),
    ("threads", int, "torch threads"),
    ("image-size", int, "classifier input side (px)"),
    ("grow", int, "px objects grow after splitting (masks with gaps: 1)"),
    ("min-object-fraction", float, "serving drops objects below this x the median area"),
    ("fill-holes", bool, "serving fills holes in objects (nuclei: yes)"),
]


def folder_to_zip(path: Path) -> bytes:
    """A dataset folder (or a .zip file) as zip bytes; files sorted so the hash is stable."""
    if path.is_file():
        return path.read_bytes()
    if not path.is_dir():
        raise click.BadParameter(f"{path} is neither a folder nor a zip file")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(
                file.relative_to(path).as_posix(), date_time=(1980, 1, 1, 0, 0, 0)
            )
            archive.writestr(info, file.read_bytes())
    return buf.getvalue()


def _clean_invoke(invoke: Any, ctx: click.Context) -> Any:
    from pixelmill.errors import PixelmillError

    try:
        return invoke(ctx)
    except PixelmillError as exc:
        files = exc.extra.get("files") if isinstance(exc.extra, dict) else None
        lines = [f"{exc.title}: {exc.detail}"]
        lines += [f"  {f['file']}: {f['problem']}" for f in (files or [])[:50]]
        raise click.ClickException("\n".join(lines)) from None


class _CleanErrors(click.Group):
    """Show pixelmill errors (409 conflicts, 404s, invalid datasets) as clear lines."""

    def invoke(self, ctx: click.Context) -> Any:
        return _clean_invoke(super().invoke, ctx)


class _CleanCommand(click.Command):
    def invoke(self, ctx: click.Context) -> Any:
        return _clean_invoke(super().invoke, ctx)


def _quiet() -> None:
    import logging

    # libvips reports every thread pool at INFO; training prints its own progress
    logging.getLogger("pyvips").setLevel(logging.WARNING)


@click.group("datasets", cls=_CleanErrors)
def datasets_group() -> None:
    """Training datasets: make, upload, list."""
    _quiet()


@datasets_group.command("synth-nuclei")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--count", default=600, show_default=True, help="Number of images.")
@click.option("--size", default=256, show_default=True, help="Image side (px).")
@click.option("--seed", default=0, show_default=True, help="Generator seed.")
@click.option(
    "--gaps/--no-gaps",
    default=False,
    show_default=True,
    help="Masks keep a background line between touching nuclei (train with --grow 1).",
)
@click.option(
    "--widefield/--no-widefield",
    default=False,
    show_default=True,
    help="Harder widefield conditions: bright cell bodies, saturated nuclei, nucleoli.",
)
def synth_nuclei(out: Path, count: int, size: int, seed: int, gaps: bool, widefield: bool) -> None:
    """Write a synthetic fluorescence-nuclei dataset (images/ + masks/ PNGs) to OUT."""
    import numpy as np
    import pyvips

    from pixelmill.ml.synthetic import NucleiConfig, nuclei_sample

    cfg = NucleiConfig.widefield((size, size)) if widefield else NucleiConfig(size=(size, size))
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, mask = nuclei_sample(seed, i, cfg, gaps=gaps)
        vips = pyvips.Image.new_from_array(np.ascontiguousarray(image))
        if image.dtype == np.uint16:
            vips = vips.copy(interpretation="grey16")
        vips.write_to_file(str(out / "images" / f"nuclei_{i:05d}.png"))
        pyvips.Image.new_from_array(mask).write_to_file(str(out / "masks" / f"nuclei_{i:05d}.png"))
    click.echo(f"wrote {count} images and masks to {out}")


def _spec_options(func: Any) -> Any:
    for name, kind, help_text in reversed(_SPEC_OPTIONS):
        flag = f"--{name}/--no-{name}" if kind is bool else f"--{name}"
        func = click.option(flag, type=kind, default=None, help=help_text)(func)
    return func


@click.command("train", cls=_CleanCommand)
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option("--name", required=True, help="Model name in the registry.")
@click.option("--val-fraction", default=0.15, show_default=True, help="Validation share.")
@click.option("--split-seed", default=0, show_default=True, help="Seed of the train/val split.")
@click.option(
    "--onnx", "onnx_out", type=click.Path(path_type=Path), help="Also write the ONNX here."
)
@click.option(
    "--card",
    "card_out",
    type=click.Path(path_type=Path),
    help="Also write the model card JSON here.",
)
@click.option(
    "--register/--no-register",
    default=True,
    show_default=True,
    help="Register the version in the data dir's registry.",
)
@click.option("--alias", default=None, help="Point this alias at the new version.")
@click.option("--description", default="", help="Free text stored with the version.")
@click.option("--data-dir", default=None)
@_spec_options
def train_command(
    dataset: Path,
    name: str,
    val_fraction: float,
    split_seed: int,
    onnx_out: Path | None,
    card_out: Path | None,
    register: bool,
    alias: str | None,
    description: str,
    data_dir: str | None,
    **spec_fields: Any,
) -> None:
    """Train a model on DATASET (a folder or zip of images/ + masks/, or class folders),
    export it to ONNX, check it against torch, and register it.

    Runs in this process (it needs the ``train`` extra: torch). For training as a job on
    the ``train`` queue use the HTTP API (POST /v1/training-runs).
    """
    _quiet()
    from pixelmill.ml import datasets as ds_core
    from pixelmill.ml import export, training
    from pixelmill.ml.card import model_card
    from pixelmill.ml.spec import TrainSpec

    fields = {k: v for k, v in spec_fields.items() if v is not None}
    spec = TrainSpec(**fields)
    data = folder_to_zip(dataset)
    parsed = ds_core.parse(data, task=spec.task, val_fraction=val_fraction, seed=split_seed)
    click.echo(f"dataset {parsed.sha256[:12]}: {json.dumps(parsed.summary())}", err=True)

    def progress(event: dict[str, Any]) -> None:
        click.echo(json.dumps(event), err=True)

    result = training.train(spec, parsed, progress)
    onnx_bytes = export.to_onnx(result.network, result.input_spec)
    diff = export.check(onnx_bytes, result.network, result.input_spec)
    command = _command_line(click.get_current_context())
    card = model_card(name, spec, result, parsed, onnx_bytes, diff, command, description)
    if onnx_out:
        onnx_out.parent.mkdir(parents=True, exist_ok=True)
        onnx_out.write_bytes(onnx_bytes)
    if card_out:
        card_out.parent.mkdir(parents=True, exist_ok=True)
        card_out.write_text(json.dumps(card, indent=1) + "\n")
    if register:
        from pixelmill.runtime.cli import _container

        c = _container(data_dir)
        try:
            version = c.models.register_card(card, onnx_bytes, actor="cli")
            if alias:
                c.models.promote(name, version.version, alias, actor="cli")
            click.echo(
                json.dumps({"model": name, "version": version.version, "sha256": version.sha256})
            )
        finally:
            c.close()
    else:
        click.echo(
            json.dumps({"model": name, "sha256": card["sha256"], "metrics": card["metrics"]})
        )


def _command_line(ctx: click.Context) -> str:
    """The ``pixelmill ...`` command line equivalent to this invocation (for the card)."""
    import shlex

    parts = ["pixelmill", ctx.info_name or "train"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if isinstance(param, click.Argument):
            parts.append(shlex.quote(str(value)))
        elif value is not None and value != param.default and param.opts:
            if isinstance(param, click.Option) and param.is_flag:
                opts = param.opts if value else param.secondary_opts
                parts.append(opts[0] if opts else param.opts[0])
            else:
                parts += [param.opts[0], shlex.quote(str(value))]
    return " ".join(parts)


def register_default_model(container: Any) -> None:
    """Register the shipped ``nuclei`` model as ``nuclei@production`` (idempotent)."""
    version = container.models.ensure_default()
    if version is not None:
        click.echo(f"model {version.ref} is nuclei@production unless you moved the alias")


# -- the model registry ------------------------------------------------------------------
@click.group("models", cls=_CleanErrors)
def models_group() -> None:
    """The model registry: list, show, compare, promote, rollback, delete, register."""


def _registry(data_dir: str | None) -> tuple[Any, Any]:
    from pixelmill.runtime.cli import _container

    c = _container(data_dir)
    return c, c.models


def _print(value: Any) -> None:
    click.echo(json.dumps(value, indent=1, default=str))


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
            _print(registry.resolve(ref).to_json())
        else:
            _print(registry.describe(ref))
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
        _print(registry.compare(name, list(versions) or None))
    finally:
        c.close()


@models_group.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--alias", default="production", show_default=True)
@click.option("--note", default=None)
@click.option("--data-dir", default=None)
def models_promote(
    name: str, version: int, alias: str, note: str | None, data_dir: str | None
) -> None:
    """Point NAME@ALIAS at VERSION (audited)."""
    c, registry = _registry(data_dir)
    try:
        _print(registry.promote(name, version, alias, actor="cli", note=note).to_json())
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
        _print(registry.rollback(name, alias, actor="cli", to_version=to_version).to_json())
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
        _print(version.to_json())
    finally:
        c.close()


@datasets_group.command("upload")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", default=None)
@click.option("--task", type=click.Choice(["segmentation", "classification"]), default=None)
@click.option("--val-fraction", default=0.15, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--data-dir", default=None)
def datasets_upload(
    path: Path,
    name: str | None,
    task: str | None,
    val_fraction: float,
    seed: int,
    data_dir: str | None,
) -> None:
    """Validate and store a dataset (a folder or a zip); prints its id and split."""
    from pixelmill.runtime.cli import _container

    c = _container(data_dir)
    try:
        record, _created = c.trainer.add_dataset(
            folder_to_zip(path),
            name=name or path.name,
            task=task,
            val_fraction=val_fraction,
            seed=seed,
            actor="cli",
        )
        _print(record.to_json())
    finally:
        c.close()


@datasets_group.command("list")
@click.option("--data-dir", default=None)
def datasets_list(data_dir: str | None) -> None:
    """Stored datasets."""
    from pixelmill.runtime.cli import _container

    c = _container(data_dir)
    try:
        for d in c.trainer.datasets.list():
            click.echo(f"{d.id}\t{d.task}\titems={d.items}\t{d.name}")
    finally:
        c.close()
