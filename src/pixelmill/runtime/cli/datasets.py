"""``pixelmill datasets ...``: training datasets (synthetic, uploaded, listed)."""

from __future__ import annotations

import io
from pathlib import Path

import click

from pixelmill.runtime.cli._common import (
    CleanErrors,
    folder_to_zip,
    open_container,
    print_json,
    quiet_vips,
)


@click.group("datasets", cls=CleanErrors)
def datasets_group() -> None:
    """Training datasets: make, upload, list."""
    quiet_vips()


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
@click.option(
    "--crowded/--no-crowded",
    default=False,
    show_default=True,
    help="The widefield conditions with packed, touching nuclei (for an instance head).",
)
@click.option(
    "--labels/--no-labels",
    default=False,
    show_default=True,
    help="Masks are instance label images (16-bit, each nucleus its own value): for evaluation.",
)
def synth_nuclei(
    out: Path,
    count: int,
    size: int,
    seed: int,
    gaps: bool,
    widefield: bool,
    crowded: bool,
    labels: bool,
) -> None:
    """Write a synthetic fluorescence-nuclei dataset (images/ + masks/ PNGs) to OUT."""
    import numpy as np
    import pyvips

    from pixelmill.ml.synthetic import NucleiConfig, nuclei_labelled, nuclei_sample

    cfg = NucleiConfig(size=(size, size))
    if crowded:
        cfg = NucleiConfig.crowded((size, size))
    elif widefield:
        cfg = NucleiConfig.widefield((size, size))
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        mask: np.ndarray
        if labels:
            image, found = nuclei_labelled(seed, i, cfg)
            mask = found.astype(np.uint16)
        else:
            image, mask = nuclei_sample(seed, i, cfg, gaps=gaps)
        for folder, arr in (("images", image), ("masks", mask)):
            vips = pyvips.Image.new_from_array(np.ascontiguousarray(arr))
            if arr.dtype == np.uint16:
                vips = vips.copy(interpretation="grey16")
            vips.write_to_file(str(out / folder / f"nuclei_{i:05d}.png"))
    click.echo(f"wrote {count} images and masks to {out}")


@datasets_group.command("synth-tissue")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--count", default=60, show_default=True, help="Number of images.")
@click.option("--size", default=256, show_default=True, help="Image side (px).")
@click.option("--seed", default=0, show_default=True, help="Generator seed.")
def synth_tissue(out: Path, count: int, size: int, seed: int) -> None:
    """Write a synthetic tissue graph dataset (tumour nests in stroma) to OUT: images/,
    masks/ (16-bit instance labels) and cells.csv (image,label,class)."""
    import zipfile

    from pixelmill.ml.datasets import build_graph_archive
    from pixelmill.ml.synthetic_tissue import CLASSES, TissueConfig, tissue_sample

    cfg = TissueConfig(size=(size, size))
    samples = []
    for i in range(count):
        s = tissue_sample(seed, i, cfg)
        classes = {label: CLASSES[c] for label, c in enumerate(s.classes) if label > 0}
        samples.append((f"tissue_{i:05d}", s.image, s.labels, classes))
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(build_graph_archive(samples))) as archive:
        archive.extractall(out)
    click.echo(f"wrote {count} images, label masks and cells.csv to {out}")


@datasets_group.command("synth-timelapse")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--count", default=160, show_default=True, help="Number of sequences.")
@click.option("--frames", default=8, show_default=True, help="Frames a sequence.")
@click.option("--size", default=128, show_default=True, help="Frame side (px).")
@click.option("--seed", default=0, show_default=True, help="Generator seed.")
def synth_timelapse(out: Path, count: int, frames: int, size: int, seed: int) -> None:
    """Write a synthetic time-lapse dataset (moving, blinking nuclei) to OUT: images/ and
    masks/ multi-page TIFFs, the masks 16-bit instance labels (one id per nucleus through
    the sequence). Train with --task timelapse."""
    import zipfile

    import numpy as np

    from pixelmill.ml.sequence_dataset import build_archive
    from pixelmill.ml.synthetic_timelapse import TimelapseConfig, nuclei_timelapse

    cfg = TimelapseConfig(size=(size, size), frames=frames)
    sequences = []
    for i in range(count):
        image, labels = nuclei_timelapse(seed, i, cfg)
        sequences.append((f"timelapse_{i:05d}", image, labels.astype(np.uint16)))
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(build_archive(sequences))) as archive:
        archive.extractall(out)
    click.echo(f"wrote {count} sequences of {frames} frames and their label stacks to {out}")


@datasets_group.command("upload")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", default=None)
@click.option(
    "--task",
    type=click.Choice(["segmentation", "classification", "graph", "timelapse"]),
    default=None,
)
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
    c = open_container(data_dir)
    try:
        record, _created = c.trainer.add_dataset(
            folder_to_zip(path),
            name=name or path.name,
            task=task,
            val_fraction=val_fraction,
            seed=seed,
            actor="cli",
        )
        print_json(record.to_json())
    finally:
        c.close()


@datasets_group.command("list")
@click.option("--data-dir", default=None)
def datasets_list(data_dir: str | None) -> None:
    """Stored datasets."""
    c = open_container(data_dir)
    try:
        for d in c.trainer.datasets.list():
            click.echo(f"{d.id}\t{d.task}\titems={d.items}\t{d.name}")
    finally:
        c.close()
