"""``pixelmill train``: train a model in this process, export it to ONNX, register it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pixelmill.runtime.cli._common import CleanCommand, folder_to_zip, open_container, quiet_vips

#: spec fields settable from the command line, with their click types
_SPEC_OPTIONS: list[tuple[str, Any, str]] = [
    (
        "task",
        click.Choice(["segmentation", "classification", "graph", "timelapse"]),
        "segmentation, classification, graph or timelapse",
    ),
    ("arch", click.Choice(["unet", "cnn", "gnn", "mlp", "runet"]), "network (default from task)"),
    ("depth", int, "U-Net levels / CNN blocks / graph layers"),
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
    ("max-edge", float, "graph: longest edge, in median object diameters"),
    ("frames", int, "timelapse: frames a window holds (fixed in the ONNX model)"),
    ("head", click.Choice(["mask", "distance"]), "segmentation output (distance: instance head)"),
    ("seed-threshold", float, "distance head: distance above which pixels seed objects"),
    ("distance-cap", float, "distance head target: 0 per-object normalised, else px / cap"),
]


def _spec_options(func: Any) -> Any:
    for name, kind, help_text in reversed(_SPEC_OPTIONS):
        flag = f"--{name}/--no-{name}" if kind is bool else f"--{name}"
        func = click.option(flag, type=kind, default=None, help=help_text)(func)
    return func


@click.command("train", cls=CleanCommand)
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
@click.option(
    "--provenance",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A JSON file (where the data came from, its licences, what was used for what) "
    "kept in the card as 'provenance'.",
)
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
    provenance: Path | None,
    data_dir: str | None,
    **spec_fields: Any,
) -> None:
    """Train a model on DATASET (a folder or zip of images/ + masks/, or class folders),
    export it to ONNX, check it against torch, and register it.

    Runs in this process (it needs the ``train`` extra: torch). For training as a job on
    the ``train`` queue use the HTTP API (POST /v1/training-runs).
    """
    quiet_vips()
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
    if provenance is not None:
        card["provenance"] = json.loads(provenance.read_text())
    if onnx_out:
        onnx_out.parent.mkdir(parents=True, exist_ok=True)
        onnx_out.write_bytes(onnx_bytes)
    if card_out:
        card_out.parent.mkdir(parents=True, exist_ok=True)
        card_out.write_text(json.dumps(card, indent=1) + "\n")
    if register:
        c = open_container(data_dir)
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
