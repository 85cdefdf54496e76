"""Whole-slide analysis: a preset run tile by tile over a slide of any size, with
outputs streamed to a folder and memory bounded by a few tiles.

Reading: :class:`~pixelmill.imaging.slides.reader.Slide`. Work:
:func:`pixelmill.imaging.analysis.tiles.process_tiles` with a threshold and marker
distance fixed from a sample of full-resolution tissue windows
(:func:`~pixelmill.imaging.slides.plan.calibrate`). Output folder (given by the caller)::

    labels.tif      uint32 BigTIFF, tiled like the analysis, zlib (global object ids)
    objects.parquet one row per object (global ids and slide coordinates), zstd
    summary.json    per-slide summary (counts, density, IHC results, timing)
    slide.dzi + slide_files/   DeepZoom pyramid for viewers (with ``dzi=True``)
    overlay.dzi + overlay_files/   the same with object contours (``overlay_dzi=True``)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixelmill.imaging.analysis import export, presets, stain
from pixelmill.imaging.analysis import measure as m
from pixelmill.imaging.analysis.tiles import Tile, TileResult, process_tiles
from pixelmill.imaging.slides.deepzoom import deepzoom, overlay_deepzoom
from pixelmill.imaging.slides.plan import (
    SlidePlan,
    calibrate,
    plan_for,
    preprocess,
    tissue_mask,
)
from pixelmill.imaging.slides.reader import Slide


@dataclass
class SlideResult:
    """Where the outputs are and what the run measured (pixels, seconds, megapixels/s)."""

    out_dir: Path
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


def analyse_slide(
    path: Path,
    out_dir: Path,
    *,
    preset: str = "he-nuclei",
    overrides: dict[str, dict[str, Any]] | None = None,
    tile: int = 1536,
    overlap: int | None = None,
    workers: int = 2,
    skip_background: bool = True,
    labels: bool = True,
    dzi: bool = False,
    overlay_dzi: bool = False,
    pixel_size_um: float | None = None,
) -> SlideResult:
    """Segment and measure a whole slide with a preset, tile by tile.

    ``overlap`` defaults to the larger of 64 px and the diameter of the preset's largest
    object (``max_area``) plus the segmenter's context. Tiles without tissue
    (from a 1024-px thumbnail) are skipped unless ``skip_background`` is False.
    """
    started = time.perf_counter()
    plan = plan_for(preset, overrides)
    slide = Slide(path)
    shape = (slide.height, slide.width)
    seg = plan.segment
    halo = int(4 * seg.sigma + 2 * seg.opening_radius + 8)
    if overlap is None:
        # the largest object's diameter plus the segmenter's context (see tiles.py)
        overlap = max(64, int(np.sqrt(4 * (seg.max_area or 4000) / np.pi)) + halo + 8)
    if pixel_size_um is None:
        from pixelmill.imaging.probe import probe

        pixel_size_um = probe(path, max_pixels=1 << 62, verify=False).pixel_size_um
    mask, scale = tissue_mask(slide, plan.brightfield)
    # one threshold and marker distance for the whole slide, from full-resolution samples
    threshold, distance = calibrate(slide.read, shape, plan, mask, scale, tile)
    thresholds = plan.measure.dab_thresholds if plan.measure is not None else [0.2, 0.4, 0.6]
    results = process_tiles(
        slide.read,
        shape,
        segment=_segmenter(plan, threshold, distance),
        measure=_measurer(plan, pixel_size_um, thresholds),
        tile=tile,
        overlap=overlap,
        halo=halo,
        skip=_without_tissue(mask, scale) if skip_background else None,
        workers=workers,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    sink = _Sink(out_dir, tile)
    files = sink.write(results, shape, labels=labels)
    analysed = time.perf_counter() - started
    summary = m.summarize(sink.tally, pixel_size_um=pixel_size_um, thresholds=thresholds)
    summary.update(
        preset=presets.get(preset).ref,
        slide={"width": slide.width, "height": slide.height, "path": path.name},
        tiling={
            "tile": tile,
            "overlap": overlap,
            "halo": halo,
            "tiles": sink.tiles,
            "skipped_background": sink.skipped,
            "threshold": threshold,
            "min_distance_px": distance,
        },
        seconds=round(analysed, 3),
        megapixels_per_second=round(slide.width * slide.height / 1e6 / analysed, 3),
    )
    files.update(_pyramids(slide, out_dir, files, summary, dzi=dzi, overlay=overlay_dzi))
    files["summary"] = out_dir / "summary.json"
    files["summary"].write_bytes(export.to_json(summary))
    return SlideResult(out_dir, summary, files)


def _without_tissue(mask: np.ndarray, scale: float) -> Callable[[Tile], bool]:
    """True for tiles whose core has no tissue in the low-resolution ``mask``."""

    def skip(t: Tile) -> bool:
        r0, c0, r1, c1 = t.core
        sub = mask[
            int(r0 * scale) : int(np.ceil(r1 * scale)) + 1,
            int(c0 * scale) : int(np.ceil(c1 * scale)) + 1,
        ]
        return not bool(sub.any())

    return skip


def _segmenter(
    plan: SlidePlan, threshold: float, distance: float
) -> Callable[[np.ndarray], np.ndarray]:
    """Window pixels -> labels, with the slide's one threshold and marker distance."""
    from pixelmill.imaging.ops.segment_classical import run as run_segmentation

    def segment(pixels: np.ndarray) -> np.ndarray:
        result, _ = run_segmentation(
            preprocess(plan, pixels), plan.segment, fixed_threshold=threshold, min_distance=distance
        )
        return result.labels

    return segment


def _measurer(
    plan: SlidePlan, pixel_size_um: float | None, thresholds: list[float]
) -> Callable[[np.ndarray, np.ndarray, Tile], tuple[Any, Any]]:
    """(owned labels, window pixels, tile) -> (objects table, the core's :class:`Tally`):
    stain maps when the preset measures stains, DAB classes when there is DAB."""
    stains = plan.measure.stains if plan.measure is not None else "none"

    def measure(lab: np.ndarray, pixels: np.ndarray, t: Tile) -> tuple[Any, Any]:
        maps: dict[str, np.ndarray] = {}
        dab = total = None
        if stains != "none":
            conc = stain.deconvolve(pixels, stains=stains)
            for i, name in enumerate(stain.stains_of(stains)[1]):
                if name != "residual":
                    maps[f"{name}_od"] = conc[..., i]
            dab = maps.get("dab_od")
            total = stain.optical_density(pixels).mean(axis=2)
        wr0, wc0 = t.window[:2]
        table = m.measure_objects(
            lab, pixels, pixel_size_um=pixel_size_um, maps=maps, offset=(wr0, wc0)
        )
        dab_column = "dab_od_mean" if dab is not None else None
        if dab_column is not None:
            import pyarrow as pa

            classes = m.dab_classes(table.column(dab_column).to_numpy(), thresholds)
            table = table.append_column("dab_class", pa.array(classes.astype(np.int64)))
        cr0, cc0, cr1, cc1 = t.core
        core = (slice(cr0 - wr0, cr1 - wr0), slice(cc0 - wc0, cc1 - wc0))
        tally = m.tally(
            None,
            objects=table,
            dab_od=None if dab is None else dab[core],
            total_od=None if total is None else total[core],
            dab_column=dab_column,
            thresholds=thresholds,
            shape=(cr1 - cr0, cc1 - cc0),
        )
        return table, tally

    return measure


class _Sink:
    """Folds tile results as they arrive: objects appended to ``objects.parquet``, the
    tally summed, tiles counted; each tile's labels become a full uint32 block for the
    tiled ``labels.tif``. Nothing of a tile outlives its turn."""

    def __init__(self, out_dir: Path, tile: int) -> None:
        self.out_dir = out_dir
        self.tile = tile
        self.tally = m.Tally()
        self.tiles = 0
        self.skipped = 0
        self._writer: Any = None

    def write(
        self, results: Iterable[TileResult], shape: tuple[int, int], *, labels: bool
    ) -> dict[str, Path]:
        """Consume ``results``; the files written, by kind (``labels``, ``objects``)."""
        files: dict[str, Path] = {}
        blocks = self._blocks(results)
        if labels:
            import tifffile

            files["labels"] = self.out_dir / "labels.tif"
            tifffile.imwrite(
                files["labels"],
                data=blocks,
                shape=shape,
                dtype=np.uint32,
                tile=(self.tile, self.tile),
                compression="zlib",
                bigtiff=True,
                photometric="minisblack",
            )
        else:
            for _ in blocks:
                pass
        if self._writer is not None:
            self._writer.close()
            files["objects"] = self.out_dir / "objects.parquet"
        return files

    def _blocks(self, results: Iterable[TileResult]) -> Iterator[np.ndarray]:
        for res in results:
            self.tiles += 1
            r0, c0, r1, c1 = res.tile.core
            if res.extra is None:
                self.skipped += 1
                self.tally.add(m.Tally(pixels=(r1 - r0) * (c1 - c0)))
            else:
                self.tally.add(res.extra)
            if res.objects is not None and res.objects.num_rows:
                if self._writer is None:
                    import pyarrow.parquet as pq

                    self._writer = pq.ParquetWriter(
                        self.out_dir / "objects.parquet", res.objects.schema, compression="zstd"
                    )
                self._writer.write_table(res.objects)
            block = np.zeros((self.tile, self.tile), np.uint32)
            block[: r1 - r0, : c1 - c0] = res.labels
            yield block


def _pyramids(
    slide: Slide,
    out_dir: Path,
    files: dict[str, Path],
    summary: dict[str, Any],
    *,
    dzi: bool,
    overlay: bool,
) -> dict[str, Path]:
    """The DeepZoom pyramids asked for; their seconds go into ``summary``."""
    written: dict[str, Path] = {}
    if dzi:
        t0 = time.perf_counter()
        written["dzi"] = deepzoom(slide, out_dir)
        summary["dzi_seconds"] = round(time.perf_counter() - t0, 3)
    if overlay and "labels" in files:
        t0 = time.perf_counter()
        written["overlay_dzi"] = overlay_deepzoom(slide, files["labels"], out_dir)
        summary["overlay_dzi_seconds"] = round(time.perf_counter() - t0, 3)
    return written


def dump_summary(result: SlideResult) -> str:
    """The run's summary as indented, key-sorted JSON (for the CLI)."""
    return json.dumps(result.summary, indent=2, sort_keys=True)


__all__ = ["SlideResult", "analyse_slide", "dump_summary"]
