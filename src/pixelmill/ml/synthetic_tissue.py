"""Synthetic tissue with two cell classes, tumour and stroma, arranged in regions.

A labelled set for cell-graph classification (numpy/scipy only). Each image is a field
of nuclei (drawn by :mod:`pixelmill.ml.synthetic`'s nucleus model) over a tissue map:
a smooth random field, thresholded, gives **tumour nests** (densely packed nuclei) in
**stroma** (sparser nuclei, elongated along the band's direction). A nucleus's own
appearance tells its class only weakly — tumour nuclei are on average a little larger,
brighter and rounder, but the distributions overlap widely — while its neighbours
almost always share its class. So a per-cell classifier is often wrong and a graph
network, which sees the neighbourhood, can do better; that is the point of the set.

Every sample is a pure function of ``(seed, index)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pixelmill.ml.synthetic import _nucleus, _smooth_noise

CLASSES = ("stroma", "tumour")


@dataclass(frozen=True)
class TissueConfig:
    """Ranges the generator draws from (pixels unless noted)."""

    size: tuple[int, int] = (256, 256)
    #: median nucleus radius, px
    radius: float = 5.5
    #: share of the field that is tumour, drawn uniformly per image
    tumour_share: tuple[float, float] = (0.3, 0.6)
    #: size of the tumour nests (smoothing of the tissue field, px)
    nest_scale: tuple[float, float] = (18.0, 30.0)
    #: how much larger (radius) and brighter tumour nuclei are on average (ratio)
    tumour_size: float = 1.12
    tumour_brightness: float = 1.15
    #: spread (lognormal sigma) of radius and brightness within each class
    size_spread: float = 0.18
    brightness_spread: float = 0.3
    #: share of grid positions left empty in stroma (it is sparser than tumour)
    stroma_gaps: float = 0.35
    #: share of cells whose class is flipped against their region (lone cells)
    strays: float = 0.03


@dataclass(frozen=True)
class TissueSample:
    """``image`` (rows, cols) uint8 or uint16; ``labels`` (rows, cols) int32 instance
    labels; ``classes`` (labels.max() + 1,) int64: the class index of each label
    (index 0, the background, is -1), into :data:`CLASSES`."""

    image: NDArray[np.generic]
    labels: NDArray[np.int32]
    classes: NDArray[np.int64]


def tissue_sample(seed: int, index: int, config: TissueConfig | None = None) -> TissueSample:
    """One synthetic tissue image with instance labels and per-cell classes.

    >>> s = tissue_sample(0, 0, TissueConfig(size=(96, 96)))
    >>> s.image.shape == s.labels.shape == (96, 96), set(s.classes[1:]) <= {0, 1}
    ((True, True), True)
    """
    from scipy import ndimage

    cfg = config or TissueConfig()
    rng = np.random.default_rng([seed, index, 7151])
    rows, cols = cfg.size
    field = _smooth_noise(rng, (rows, cols), rng.uniform(*cfg.nest_scale))
    tumour_map = field > np.quantile(field, 1 - rng.uniform(*cfg.tumour_share))
    band_angle = rng.uniform(0, np.pi)  # stroma fibres run this way
    signal = np.zeros((rows, cols))
    labels = np.zeros((rows, cols), np.int32)
    classes = [-1]
    for cy, cx in _positions(rng, cfg):
        region = int(tumour_map[int(cy), int(cx)])
        if region == 0 and rng.random() < cfg.stroma_gaps:
            continue
        cls = 1 - region if rng.random() < cfg.strays else region
        tumour = cls == 1
        radius = cfg.radius * (cfg.tumour_size if tumour else 1.0)
        radius *= float(rng.lognormal(0, cfg.size_spread))
        if tumour:
            elong, angle = np.sqrt(rng.uniform(1.0, 1.6)), rng.uniform(0, np.pi)
        else:
            elong, angle = np.sqrt(rng.uniform(1.2, 2.6)), band_angle + rng.normal(0, 0.3)
        mask, texture = _nucleus(rng, max(radius, 2.5), float(elong), float(angle))
        bright = float(rng.lognormal(0, cfg.brightness_spread))
        bright *= cfg.tumour_brightness if tumour else 1.0
        if _paste(signal, labels, mask, bright * texture, int(cy), int(cx), len(classes)):
            classes.append(cls)
    image = ndimage.gaussian_filter(signal, rng.uniform(0.7, 1.4))
    image += rng.uniform(0.03, 0.15) * (1 + 0.3 * _smooth_noise(rng, (rows, cols), rows / 5))
    image /= max(float(np.percentile(image, 99.9)), 1e-6)
    photons = np.exp(rng.uniform(np.log(60), np.log(600)))
    image = rng.poisson(np.clip(image, 0, None) * photons) / photons
    exposure = rng.uniform(0.4, 0.95)
    out: NDArray[np.generic]
    if rng.random() < 0.5:
        out = np.clip(image * exposure * 255, 0, 255).astype(np.uint8)
    else:
        out = np.clip(image * exposure * 65535 * rng.uniform(0.1, 1), 0, 65535).astype(np.uint16)
    # a nucleus fully covered by later ones leaves a gap in the labels: compact them
    present = np.unique(labels)
    lut = np.zeros(len(classes), np.int32)
    lut[present] = np.arange(len(present), dtype=np.int32)
    kept = np.asarray(classes, np.int64)[present]
    kept[0] = -1
    return TissueSample(out, lut[labels], kept)


def _positions(rng: np.random.Generator, cfg: TissueConfig) -> NDArray[np.float64]:
    """A jittered hexagonal grid at about 2.4 radii spacing, in random order."""
    rows, cols = cfg.size
    step = cfg.radius * 2.4
    pts = []
    for i, y in enumerate(np.arange(step / 2, rows, step * 0.87)):
        shift = step / 2 if i % 2 else 0.0
        pts += [(y, x) for x in np.arange(step / 2 + shift, cols, step)]
    grid = np.asarray(pts) + rng.normal(0, step * 0.12, size=(len(pts), 2))
    grid = np.clip(grid, 0, [rows - 1, cols - 1])
    return grid[rng.permutation(len(grid))]


def _paste(
    signal: NDArray[np.float64],
    labels: NDArray[np.int32],
    mask: NDArray[np.bool_],
    values: NDArray[np.float64],
    cy: int,
    cx: int,
    label: int,
) -> bool:
    """Draw one nucleus centred at (cy, cx); False when nothing of it lands inside."""
    rows, cols = labels.shape
    h = mask.shape[0] // 2
    y0, x0 = cy - h, cx - h
    ys = slice(max(y0, 0), min(y0 + mask.shape[0], rows))
    xs = slice(max(x0, 0), min(x0 + mask.shape[1], cols))
    sub = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
    if not mask[sub].any():
        return False
    signal[ys, xs] = np.maximum(signal[ys, xs], values[sub])
    labels[ys, xs][mask[sub]] = label
    return True


def tissue_dataset(
    count: int, *, seed: int = 0, config: TissueConfig | None = None
) -> list[TissueSample]:
    """``count`` samples of :func:`tissue_sample`, indices 0..count-1."""
    return [tissue_sample(seed, i, config) for i in range(count)]
