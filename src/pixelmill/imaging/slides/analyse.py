"""Whole-slide analysis: a preset run tile by tile over a slide of any size, with
outputs streamed to a folder and memory bounded by a few tiles.

Reading: libvips for (pyramidal) TIFF, OME-TIFF, SVS with JPEG tiles and every format it
reads; OpenSlide (``openslide-python`` + ``openslide-bin``) for vendor formats libvips
lacks (NDPI, MRXS, SCN, VMS, ...). Work: :func:`pixelmill.imaging.analysis.tiles.
process_tiles` with a threshold and marker distance fixed from a sample of full-resolution
tissue windows (so every tile uses the same decision, as a whole-image run would).
Output folder::

    labels.tif      uint32 BigTIFF, tiled like the analysis, zlib (global object ids)
    objects.parquet one row per object (global ids and slide coordinates), zstd
    summary.json    per-slide summary (counts, density, IHC results, timing)
    slide.dzi + slide_files/   DeepZoom pyramid for viewers (with ``dzi=True``)
    overlay.dzi + overlay_files/   the same with object contours (``overlay_dzi=True``)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyvips

from pixelmill.errors import InvalidParameter, NotFound
from pixelmill.imaging import ops
from pixelmill.imaging.analysis import export, presets
from pixelmill.imaging.analysis.tiles import Tile, process_tiles
from pixelmill.imaging.ops._analysis import from_array, to_array

log = logging.getLogger(__name__)

#: suffixes read through OpenSlide rather than libvips
OPENSLIDE_SUFFIXES = frozenset({".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide"})


@dataclass
class SlideResult:
    """Where the outputs are and what the run measured (pixels, seconds, megapixels/s)."""

    out_dir: Path
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


class Slide:
    """A slide opened for tiled reading: size, regions, a thumbnail.

    libvips opens TIFF/OME-TIFF/SVS lazily with random access (only the tiles a region
    touches are decoded); vendor formats go through OpenSlide.
    """

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise NotFound(f"slide {path} does not exist")
        self.path = path
        self.vips: pyvips.Image | None = None
        self._openslide: Any = None
        if path.suffix.lower() in OPENSLIDE_SUFFIXES:
            import openslide

            self._openslide = openslide.OpenSlide(str(path))
            self.width, self.height = self._openslide.dimensions
        else:
            try:
                self.vips = pyvips.Image.new_from_file(str(path), access="random")
            except pyvips.Error as exc:
                raise InvalidParameter(
                    f"cannot read slide {path.name}: {str(exc).strip()[-200:]}"
                ) from exc
            self.width, self.height = self.vips.width, self.vips.height

    def read(self, r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
        """Pixels of rows r0..r1, cols c0..c1 (end-exclusive), alpha removed."""
        if self._openslide is not None:
            region = self._openslide.read_region((c0, r0), 0, (c1 - c0, r1 - r0))
            return np.asarray(region)[..., :3].copy()
        assert self.vips is not None
        return to_array(self.vips.crop(c0, r0, c1 - c0, r1 - r0))[0]

    def thumbnail(self, side: int = 1024) -> tuple[np.ndarray, float]:
        """A thumbnail at most ``side`` px, and its scale (thumbnail px per slide px)."""
        if self._openslide is not None:
            thumb = np.asarray(self._openslide.get_thumbnail((side, side)).convert("RGB"))
            return thumb, thumb.shape[1] / self.width
        assert self.vips is not None
        image = self.vips.thumbnail_image(side, height=side)
        return to_array(image)[0], image.width / self.width


def deepzoom(
    source: Path | Slide,
    out_dir: Path,
    *,
    name: str = "slide",
    tile_size: int = 254,
    overlap: int = 1,
    quality: int = 85,
) -> Path:
    """Write a DeepZoom pyramid (``name.dzi`` + ``name_files/``) with JPEG tiles; libvips
    streams the slide, so memory stays bounded whatever its size. Returns the .dzi path."""
    slide = source if isinstance(source, Slide) else Slide(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    if slide.vips is None:
        return _deepzoom_openslide(slide, out_dir, name, tile_size, overlap, quality)
    image = slide.vips
    if image.bands > 3 and not image.hasalpha():
        image = image.extract_band(0, n=3)
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if str(image.format) != "uchar":
        image = image.colourspace("srgb") if image.bands >= 3 else image.colourspace("b-w")
    image.dzsave(
        str(out_dir / name), tile_size=tile_size, overlap=overlap, suffix=f".jpg[Q={quality}]"
    )
    return out_dir / f"{name}.dzi"


def overlay_deepzoom(
    slide: Slide,
    labels_tif: Path,
    out_dir: Path,
    *,
    name: str = "overlay",
    colour: tuple[int, int, int] = (0, 255, 0),
    quality: int = 85,
) -> Path:
    """DeepZoom pyramid of the slide with object contours drawn in ``colour``, computed
    lazily by libvips from ``labels.tif`` (an object pixel is contour when a 4-neighbour
    has another label), so it streams like :func:`deepzoom`."""
    if slide.vips is None:
        raise InvalidParameter("overlay pyramids need a slide libvips reads (TIFF, SVS)")
    labels = pyvips.Image.new_from_file(str(labels_tif), access="random")
    w, h = labels.width, labels.height
    left = labels.embed(1, 0, w, h, extend="copy")
    up = labels.embed(0, 1, w, h, extend="copy")
    right = labels.crop(1, 0, w - 1, h).embed(0, 0, w, h, extend="copy") if w > 1 else labels
    down = labels.crop(0, 1, w, h - 1).embed(0, 0, w, h, extend="copy") if h > 1 else labels
    differs = (labels != left) | (labels != up) | (labels != right) | (labels != down)
    edge = differs & (labels > 0)
    base = slide.vips
    if base.hasalpha():
        base = base.flatten(background=[255] * (base.bands - 1))
    if base.bands == 1:
        base = base.colourspace("srgb")
    shown = edge.ifthenelse(list(colour), base.extract_band(0, n=3)).cast("uchar")
    out_dir.mkdir(parents=True, exist_ok=True)
    shown.copy(interpretation="srgb").dzsave(
        str(out_dir / name), tile_size=254, overlap=1, suffix=f".jpg[Q={quality}]"
    )
    return out_dir / f"{name}.dzi"


def _deepzoom_openslide(
    slide: Slide, out_dir: Path, name: str, tile_size: int, overlap: int, quality: int
) -> Path:
    from openslide.deepzoom import DeepZoomGenerator

    dz = DeepZoomGenerator(slide._openslide, tile_size=tile_size, overlap=overlap)
    for level in range(dz.level_count):
        folder = out_dir / f"{name}_files" / str(level)
        folder.mkdir(parents=True, exist_ok=True)
        cols, rows = dz.level_tiles[level]
        for row in range(rows):
            for col in range(cols):
                tile = dz.get_tile(level, (col, row)).convert("RGB")
                tile.save(folder / f"{col}_{row}.jpg", quality=quality)
    dzi = out_dir / f"{name}.dzi"
    dzi.write_text(dz.get_dzi("jpg"))
    return dzi


@dataclass(frozen=True)
class _Plan:
    pre: list[ops.Step]
    segment: Any  # SegmentNucleiParams
    measure: Any  # MeasureParams | None
    brightfield: bool


def _plan(preset: str, overrides: dict[str, dict[str, Any]] | None) -> _Plan:
    chosen = presets.get(preset)
    steps = ops.parse_pipeline(presets.expand(chosen.ref, overrides))
    names = [s.op.name for s in steps]
    if "segment_nuclei" not in names:
        raise InvalidParameter(f"preset {chosen.ref} has no segment_nuclei step to tile")
    at = names.index("segment_nuclei")
    pre = [s for s in steps[:at] if s.op.name not in ("measure", "overlay", "side_by_side")]
    measure = next((s.params for s in steps if s.op.name == "measure"), None)
    return _Plan(pre, steps[at].params, measure, chosen.modality.startswith("brightfield"))


def _preprocess(plan: _Plan, pixels: np.ndarray) -> np.ndarray:
    if not plan.pre:
        return pixels
    image = from_array(pixels)
    ctx = ops.OpContext()
    for step in plan.pre:
        image = step.op.apply(image, step.params, ctx)
    return to_array(image)[0]


def _tissue_mask(slide: Slide, brightfield: bool) -> tuple[np.ndarray, float]:
    """A low-resolution tissue mask and its scale (mask pixels per slide pixel)."""
    from pixelmill.imaging.analysis.segment import threshold_value
    from pixelmill.imaging.analysis.stain import optical_density

    pixels, scale = slide.thumbnail(1024)
    if brightfield and pixels.ndim == 3 and pixels.shape[2] == 3:
        return optical_density(pixels).mean(axis=2) > 0.08, scale
    grey = pixels if pixels.ndim == 2 else pixels[..., 0]
    grey = grey.astype(np.float32)
    t = threshold_value(grey, method="triangle")
    return grey > min(t, float(np.percentile(grey, 50))), scale


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
    import pyarrow.parquet as pq

    from pixelmill.imaging.analysis import measure as m
    from pixelmill.imaging.analysis import stain
    from pixelmill.imaging.analysis.segment import prepare, threshold_value
    from pixelmill.imaging.ops.segment_classical import run as run_segmentation

    started = time.perf_counter()
    plan = _plan(preset, overrides)
    slide = Slide(path)
    height, width = slide.height, slide.width
    read = slide.read
    seg = plan.segment
    halo = int(4 * seg.sigma + 2 * seg.opening_radius + 8)
    if overlap is None:
        max_area = seg.max_area or 4000
        # the largest object's diameter plus the segmenter's context (see tiles.py)
        overlap = max(64, int(np.sqrt(4 * max_area / np.pi)) + halo + 8)
    if pixel_size_um is None:
        from pixelmill.imaging.probe import probe

        pixel_size_um = probe(path, max_pixels=1 << 62, verify=False).pixel_size_um

    mask, scale = _tissue_mask(slide, plan.brightfield)

    def has_tissue(t: Tile) -> bool:
        r0, c0, r1, c1 = t.core
        sub = mask[
            int(r0 * scale) : int(np.ceil(r1 * scale)) + 1,
            int(c0 * scale) : int(np.ceil(c1 * scale)) + 1,
        ]
        return bool(sub.any())

    # one threshold and marker distance for the whole slide, from full-resolution samples
    sample_threshold, sample_distance = _calibrate(
        read, (height, width), plan, mask, scale, tile, prepare, threshold_value, run_segmentation
    )

    def segment(pixels: np.ndarray) -> np.ndarray:
        result, _ = run_segmentation(
            _preprocess(plan, pixels),
            seg,
            fixed_threshold=sample_threshold,
            min_distance=sample_distance,
        )
        return result.labels

    stains = plan.measure.stains if plan.measure is not None else "none"
    thresholds = plan.measure.dab_thresholds if plan.measure is not None else [0.2, 0.4, 0.6]

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

    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    total_tally = m.Tally()
    writer: Any = None
    counts = {"tiles": 0, "skipped": 0}

    def tiles() -> Iterator[np.ndarray]:
        nonlocal writer
        for res in process_tiles(
            read,
            (height, width),
            segment=segment,
            measure=measure,
            tile=tile,
            overlap=overlap,
            halo=halo,
            skip=(lambda t: not has_tissue(t)) if skip_background else None,
            workers=workers,
        ):
            counts["tiles"] += 1
            r0, c0, r1, c1 = res.tile.core
            if res.extra is None:
                counts["skipped"] += 1
                total_tally.add(m.Tally(pixels=(r1 - r0) * (c1 - c0)))
            else:
                total_tally.add(res.extra)
            if res.objects is not None and res.objects.num_rows:
                if writer is None:
                    writer = pq.ParquetWriter(
                        out_dir / "objects.parquet", res.objects.schema, compression="zstd"
                    )
                writer.write_table(res.objects)
            block = np.zeros((tile, tile), np.uint32)
            block[: r1 - r0, : c1 - c0] = res.labels
            yield block

    if labels:
        import tifffile

        files["labels"] = out_dir / "labels.tif"
        tifffile.imwrite(
            files["labels"],
            data=tiles(),
            shape=(height, width),
            dtype=np.uint32,
            tile=(tile, tile),
            compression="zlib",
            bigtiff=True,
            photometric="minisblack",
        )
    else:
        for _ in tiles():
            pass
    if writer is not None:
        writer.close()
        files["objects"] = out_dir / "objects.parquet"
    analysed = time.perf_counter() - started
    summary = m.summarize(total_tally, pixel_size_um=pixel_size_um, thresholds=thresholds)
    summary.update(
        preset=presets.get(preset).ref,
        slide={"width": width, "height": height, "path": path.name},
        tiling={
            "tile": tile,
            "overlap": overlap,
            "halo": halo,
            "tiles": counts["tiles"],
            "skipped_background": counts["skipped"],
            "threshold": sample_threshold,
            "min_distance_px": sample_distance,
        },
        seconds=round(analysed, 3),
        megapixels_per_second=round(width * height / 1e6 / analysed, 3),
    )
    if dzi:
        t0 = time.perf_counter()
        files["dzi"] = deepzoom(slide, out_dir)
        summary["dzi_seconds"] = round(time.perf_counter() - t0, 3)
    if overlay_dzi and labels:
        t0 = time.perf_counter()
        files["overlay_dzi"] = overlay_deepzoom(slide, files["labels"], out_dir)
        summary["overlay_dzi_seconds"] = round(time.perf_counter() - t0, 3)
    files["summary"] = out_dir / "summary.json"
    files["summary"].write_bytes(export.to_json(summary))
    return SlideResult(out_dir, summary, files)


def _calibrate(
    read: Any,
    shape: tuple[int, int],
    plan: _Plan,
    mask: np.ndarray,
    scale: float,
    tile: int,
    prepare: Any,
    threshold_value: Any,
    run_segmentation: Any,
) -> tuple[float, float]:
    """Threshold and watershed marker distance from up to 6 full-resolution windows
    centred on tissue (or fixed ones the preset gives)."""
    from pixelmill.imaging.analysis.segment import pick_channel

    seg = plan.segment
    side = min(1024, tile, shape[0], shape[1])
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        rows, cols = np.array([mask.shape[0] // 2]), np.array([mask.shape[1] // 2])
    picks = np.linspace(0, rows.size - 1, min(6, rows.size)).astype(int)
    samples, windows = [], []
    for i in picks:
        r = min(max(0, int(rows[i] / scale) - side // 2), shape[0] - side)
        c = min(max(0, int(cols[i] / scale) - side // 2), shape[1] - side)
        pixels = _preprocess(plan, read(r, c, r + side, c + side))
        windows.append(pixels)
        values = prepare(pick_channel(pixels, seg.channel), sigma=seg.sigma)
        samples.append(values.ravel()[::7])
    if seg.threshold is not None:
        t = float(seg.threshold)
    else:
        if seg.method == "local":
            raise InvalidParameter("whole-slide tiling needs a global threshold method")
        t = threshold_value(np.concatenate(samples), method=seg.method)
    if seg.min_distance is not None:
        return t, float(seg.min_distance)
    distances = [run_segmentation(w, seg, fixed_threshold=t)[0].min_distance for w in windows]
    return t, float(np.median(distances))


def dump_summary(result: SlideResult) -> str:
    return json.dumps(result.summary, indent=2, sort_keys=True)


__all__ = ["Slide", "SlideResult", "analyse_slide", "deepzoom", "overlay_deepzoom"]
