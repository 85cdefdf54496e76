"""``pixelmill slide ...`` and ``pixelmill presets``: whole-slide analysis from the shell."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group("slide")
def slide_group() -> None:
    """Whole-slide images: tiled analysis with a preset, DeepZoom pyramids."""


@slide_group.command("analyse")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--preset", default="he-nuclei", show_default=True, help="Preset name[@version].")
@click.option("--tile", default=1536, show_default=True, help="Tile side, pixels.")
@click.option("--overlap", type=int, default=None, help="Tile overlap, pixels (auto).")
@click.option("--workers", default=2, show_default=True, help="Tiles processed in parallel.")
@click.option("--pixel-size", "pixel_size", type=float, default=None, help="Micrometres/pixel.")
@click.option("--all-tiles", is_flag=True, help="Also analyse tiles without tissue.")
@click.option("--dzi", is_flag=True, help="Also write a DeepZoom pyramid of the slide.")
@click.option("--overlay-dzi", "overlay_dzi", is_flag=True, help="And one with contours.")
@click.option("--override", "overrides", default=None, help='JSON, e.g. {"segment_nuclei": {...}}.')
def analyse_command(
    path: Path,
    out_dir: Path,
    preset: str,
    tile: int,
    overlap: int | None,
    workers: int,
    pixel_size: float | None,
    all_tiles: bool,
    dzi: bool,
    overlay_dzi: bool,
    overrides: str | None,
) -> None:
    """Segment and measure PATH tile by tile; writes labels.tif, objects.parquet and
    summary.json (and slide.dzi) to --out."""
    from pixelmill.imaging.slides import analyse_slide

    result = analyse_slide(
        path,
        out_dir,
        preset=preset,
        overrides=json.loads(overrides) if overrides else None,
        tile=tile,
        overlap=overlap,
        workers=workers,
        skip_background=not all_tiles,
        dzi=dzi,
        overlay_dzi=overlay_dzi,
        pixel_size_um=pixel_size,
    )
    click.echo(json.dumps(result.summary, indent=2, sort_keys=True))


@slide_group.command("dzi")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--tile-size", default=254, show_default=True)
@click.option("--quality", default=85, show_default=True)
def dzi_command(path: Path, out_dir: Path, tile_size: int, quality: int) -> None:
    """Write a DeepZoom pyramid (slide.dzi + slide_files/) of PATH to --out."""
    from pixelmill.imaging.slides import Slide, deepzoom

    click.echo(str(deepzoom(Slide(path), out_dir, tile_size=tile_size, quality=quality)))


@click.command("presets")
def presets_command() -> None:
    """List the analysis presets (name, version, steps) as JSON."""
    from pixelmill.imaging.analysis import presets

    click.echo(json.dumps(presets.catalogue(), indent=2))
