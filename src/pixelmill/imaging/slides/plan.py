"""What a whole-slide run decides before its first tile: the preset's steps as tiles see
them, a low-resolution tissue mask, and one threshold and marker distance for the whole
slide (found on a sample of full-resolution tissue windows, so every tile uses the same
decision, as a whole-image run would)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.imaging import ops
from pixelmill.imaging.analysis import presets
from pixelmill.imaging.analysis.tiles import Reader
from pixelmill.imaging.ops._analysis import from_array, to_array
from pixelmill.imaging.slides.reader import Slide


@dataclass(frozen=True)
class SlidePlan:
    """A preset cut for tiling: the steps before segmentation (``pre``), the
    ``segment_nuclei`` parameters, the ``measure`` parameters (or ``None``), and whether
    the preset is for brightfield (RGB) slides."""

    pre: list[ops.Step]
    segment: Any  # SegmentNucleiParams
    measure: Any  # MeasureParams | None
    brightfield: bool


def plan_for(preset: str, overrides: dict[str, dict[str, Any]] | None) -> SlidePlan:
    """The :class:`SlidePlan` of a preset; a preset without ``segment_nuclei`` is a 422."""
    chosen = presets.get(preset)
    steps = ops.parse_pipeline(presets.expand(chosen.ref, overrides))
    names = [s.op.name for s in steps]
    if "segment_nuclei" not in names:
        raise InvalidParameter(f"preset {chosen.ref} has no segment_nuclei step to tile")
    at = names.index("segment_nuclei")
    pre = [s for s in steps[:at] if s.op.name not in ("measure", "overlay", "side_by_side")]
    measure = next((s.params for s in steps if s.op.name == "measure"), None)
    return SlidePlan(pre, steps[at].params, measure, chosen.modality.startswith("brightfield"))


def preprocess(plan: SlidePlan, pixels: np.ndarray) -> np.ndarray:
    """``pixels`` through the plan's steps before segmentation (numpy in, numpy out)."""
    if not plan.pre:
        return pixels
    image = from_array(pixels)
    ctx = ops.OpContext()
    for step in plan.pre:
        image = step.op.apply(image, step.params, ctx)
    return to_array(image)[0]


def tissue_mask(slide: Slide, brightfield: bool) -> tuple[np.ndarray, float]:
    """A low-resolution tissue mask (bool) and its scale (mask pixels per slide pixel)."""
    from pixelmill.imaging.analysis.stain import optical_density
    from pixelmill.imaging.analysis.thresholds import threshold_value

    pixels, scale = slide.thumbnail(1024)
    if brightfield and pixels.ndim == 3 and pixels.shape[2] == 3:
        return optical_density(pixels).mean(axis=2) > 0.08, scale
    grey = pixels if pixels.ndim == 2 else pixels[..., 0]
    grey = grey.astype(np.float32)
    t = threshold_value(grey, method="triangle")
    return grey > min(t, float(np.percentile(grey, 50))), scale


def calibrate(
    read: Reader,
    shape: tuple[int, int],
    plan: SlidePlan,
    mask: np.ndarray,
    scale: float,
    tile: int,
) -> tuple[float, float]:
    """Threshold (common scale) and watershed marker distance (px) from up to 6
    full-resolution windows centred on tissue (or the fixed ones the preset gives)."""
    from pixelmill.imaging.analysis.segment import pick_channel
    from pixelmill.imaging.analysis.thresholds import prepare, threshold_value
    from pixelmill.imaging.ops.segment_classical import run as run_segmentation

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
        pixels = preprocess(plan, read(r, c, r + side, c + side))
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
