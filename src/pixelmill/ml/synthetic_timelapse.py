"""Synthetic time-lapses of moving fluorescence nuclei (frames + instance labels), built
on the single-image generator's nuclei (:mod:`pixelmill.ml.synthetic`).

Each nucleus keeps its shape, texture and brightness through the sequence and moves by a
persistent random walk (a speed and a slowly turning heading); part of them carry a dim
cell body that moves with them. Per frame: Gaussian optics, Poisson + read noise, a
global brightness flicker, and **blinks** — a nucleus dimmed to 15-45 % for one frame
(focus drift, bleaching, a dim exposure) while it stays in the truth — the case where a
per-frame segmentation loses a nucleus and a model that sees the neighbouring frames
need not. Labels keep one id per nucleus through the sequence (so they are also the true
tracks). A pure function of ``(seed, index)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from pixelmill.ml.synthetic import NucleiConfig, _nucleus, separate_touching


@dataclass(frozen=True)
class TimelapseConfig:
    """Ranges the generator draws from (pixels and frames unless noted)."""

    size: tuple[int, int] = (128, 128)
    frames: int = 8
    #: nuclei in the field
    count: tuple[int, int] = (5, 22)
    #: median radius range, px
    radius: tuple[float, float] = (5.0, 16.0)
    #: speed, px per frame, and the heading's turn per frame (radians, s.d.)
    speed: tuple[float, float] = (0.3, 4.0)
    turn: float = 0.4
    #: chance per nucleus and frame of a blink, and the brightness it keeps
    blink: float = 0.08
    blink_level: tuple[float, float] = (0.15, 0.45)
    #: s.d. of the whole frame's brightness from frame to frame
    flicker: float = 0.08
    #: share of nuclei with a moving cell body, its brightness (x nucleus)
    cytoplasm: float = 0.6
    cytoplasm_level: tuple[float, float] = (0.1, 0.5)
    blur_sigma: tuple[float, float] = (0.6, 2.0)
    photons: tuple[float, float] = (30.0, 800.0)
    read_noise: tuple[float, float] = (0.002, 0.03)
    #: exposure (x full scale at the first frame's 99.9th percentile); share of
    #: over-exposed sequences and their exposure
    exposure: tuple[float, float] = (0.3, 0.95)
    over_exposed: float = 0.2
    over_exposure: tuple[float, float] = (1.0, 3.0)
    #: chance per nucleus and frame that it divides (from its third frame on): it ends,
    #: and two daughters of about half its area start beside it and move apart. 0 draws
    #: nothing, so sequences made without divisions stay the same
    divisions: float = 0.0
    #: shapes and textures of the nuclei (nucleoli, kidney shapes, spots)
    nuclei: NucleiConfig = field(default_factory=NucleiConfig.widefield)


@dataclass
class _Cell:
    mask: NDArray[np.bool_]
    texture: NDArray[np.float64]
    body: NDArray[np.float64] | None
    brightness: float
    position: NDArray[np.float64]
    speed: float
    heading: float
    ident: int = 0
    start: int = 0
    alive: bool = True


def _cells(rng: np.random.Generator, cfg: TimelapseConfig) -> list[_Cell]:
    rows, cols = cfg.size
    median_r = rng.uniform(*cfg.radius)
    cells: list[_Cell] = []
    for _ in range(int(rng.integers(cfg.count[0], cfg.count[1] + 1))):
        radius = max(median_r * float(rng.lognormal(0, 0.2)), 2.5)
        elong = float(np.sqrt(rng.uniform(1.0, 1.9)))
        mask, texture = _nucleus(rng, radius, elong, rng.uniform(0, np.pi), cfg.nuclei)
        body = None
        if rng.random() < cfg.cytoplasm:
            scale = rng.uniform(1.6, 2.6)
            bmask, btex = _nucleus(rng, radius * scale, 1.2, rng.uniform(0, np.pi))
            body = rng.uniform(*cfg.cytoplasm_level) * (0.6 + 0.4 * btex) * bmask
        cells.append(
            _Cell(
                mask=mask,
                texture=texture,
                body=body,
                brightness=float(rng.lognormal(0, 0.35)),
                position=rng.uniform((0, 0), (rows, cols)),
                speed=rng.uniform(*cfg.speed),
                heading=rng.uniform(0, 2 * np.pi),
                ident=len(cells) + 1,
            )
        )
    return cells


def _divide(
    rng: np.random.Generator, cells: list[_Cell], t: int, cfg: TimelapseConfig
) -> dict[int, int]:
    """Let nuclei divide at frame ``t``; returns {daughter id: mother id}."""
    born: dict[int, int] = {}
    for mother in [c for c in cells if c.alive and t - c.start >= 2]:
        if rng.random() >= cfg.divisions:
            continue
        mother.alive = False
        radius = float(np.sqrt(mother.mask.sum() / np.pi))
        axis = rng.uniform(0, 2 * np.pi)
        for side in (0.0, np.pi):
            heading = axis + side
            mask, texture = _nucleus(
                rng, radius * rng.uniform(0.7, 0.8), 1.1, heading + np.pi / 2, cfg.nuclei
            )
            offset = 0.8 * radius * np.array([np.sin(heading), np.cos(heading)])
            cells.append(
                _Cell(
                    mask=mask,
                    texture=texture,
                    body=None,
                    brightness=mother.brightness * rng.uniform(1.0, 1.3),
                    position=mother.position + offset,
                    speed=max(mother.speed, 1.5),
                    heading=heading,
                    ident=len(cells) + 1,
                    start=t,
                )
            )
            born[len(cells)] = mother.ident
    return born


def _paste(layer: NDArray, patch: NDArray, centre: NDArray, out: int | None = None) -> None:
    """``layer = max(layer, patch)`` with ``patch`` centred at ``centre`` (clipped);
    with ``out`` (a label id), write ``out`` where the patch is nonzero instead."""
    rows, cols = layer.shape
    h, w = patch.shape[0] // 2, patch.shape[1] // 2
    y0, x0 = int(np.rint(centre[0])) - h, int(np.rint(centre[1])) - w
    ys = slice(max(y0, 0), min(y0 + patch.shape[0], rows))
    xs = slice(max(x0, 0), min(x0 + patch.shape[1], cols))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return
    sub = patch[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    if out is None:
        layer[ys, xs] = np.maximum(layer[ys, xs], sub)
    else:
        layer[ys, xs][sub > 0] = out


def nuclei_timelapse(
    seed: int, index: int, config: TimelapseConfig | None = None
) -> tuple[NDArray[np.generic], NDArray[np.int32]]:
    """One synthetic time-lapse: ``(frames, labels)``, ``frames`` (T, rows, cols) uint8 or
    uint16 (one dtype and exposure for the sequence), ``labels`` (T, rows, cols) int32
    with one id per nucleus for the whole sequence (0 = background; where nuclei overlap
    the one drawn last wins).

    >>> frames, labels = nuclei_timelapse(0, 0, TimelapseConfig(size=(64, 64), frames=3))
    >>> frames.shape == labels.shape == (3, 64, 64)
    True
    """
    frames, labels, _ = nuclei_lineage(seed, index, config)
    return frames, labels


def nuclei_lineage(
    seed: int, index: int, config: TimelapseConfig | None = None
) -> tuple[NDArray[np.generic], NDArray[np.int32], dict[int, int]]:
    """:func:`nuclei_timelapse` with its lineage: ``{daughter id: mother id}`` for every
    division (``config.divisions``); a daughter's id is new, its mother's ends the frame
    before."""
    from scipy import ndimage

    cfg = config or TimelapseConfig()
    rng = np.random.default_rng([seed, index, 7])
    rows, cols = cfg.size
    cells = _cells(rng, cfg)
    psf = rng.uniform(*cfg.blur_sigma)
    yy, xx = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    gy, gx = rng.normal(0, 0.35, size=2)
    illum = np.clip(1.0 + gy * (yy - 0.5) + gx * (xx - 0.5), 0.35, None)
    background = rng.uniform(0.02, 0.2)
    photons = np.exp(rng.uniform(*np.log(cfg.photons)))
    noise = rng.uniform(*cfg.read_noise)
    over = rng.random() < cfg.over_exposed
    exposure = rng.uniform(*(cfg.over_exposure if over else cfg.exposure))
    eight_bit = rng.random() < 0.5
    depth = 255.0 if eight_bit else 65535.0 * rng.uniform(0.05, 1.0)
    frames = np.zeros((cfg.frames, rows, cols), np.uint8 if eight_bit else np.uint16)
    labels = np.zeros((cfg.frames, rows, cols), np.int32)
    lineage: dict[int, int] = {}
    scale = None
    for t in range(cfg.frames):
        signal, body = np.zeros((rows, cols)), np.zeros((rows, cols))
        steady = np.zeros((rows, cols))  # without blinks: sets the exposure at frame 0
        if t and cfg.divisions:
            lineage |= _divide(rng, cells, t, cfg)
        for cell in [c for c in cells if c.alive]:
            if t > cell.start:
                cell.heading += rng.normal(0, cfg.turn)
                step = cell.speed * np.array([np.sin(cell.heading), np.cos(cell.heading)])
                cell.position = cell.position + step
            dim = rng.uniform(*cfg.blink_level) if rng.random() < cfg.blink else 1.0
            _paste(signal, cell.brightness * dim * cell.texture, cell.position)
            if scale is None:
                _paste(steady, cell.brightness * cell.texture, cell.position)
            _paste(labels[t], cell.mask.astype(np.uint8), cell.position, out=cell.ident)
            if cell.body is not None:
                _paste(body, cell.brightness * cell.body, cell.position)
        glow = ndimage.gaussian_filter(body, 2.0)
        image = (ndimage.gaussian_filter(signal, psf) + glow) * illum + background
        if scale is None:  # the first frame, blinks undone, sets the sequence's exposure
            clean = (ndimage.gaussian_filter(steady, psf) + glow) * illum + background
            scale = max(float(np.percentile(clean, 99.9)), 1e-6)
        image = image / scale * (1.0 + rng.normal(0, cfg.flicker))
        image = rng.poisson(np.clip(image, 0, None) * photons) / photons
        image = image + rng.normal(0, noise, image.shape)
        frames[t] = np.clip(image * exposure * depth, 0, depth).astype(frames.dtype)
    return frames, labels, lineage


def timelapse_masks(labels: NDArray[np.integer]) -> NDArray[np.uint8]:
    """Training masks of a label sequence: foreground with a one-pixel line between
    touching nuclei (:func:`~pixelmill.ml.synthetic.separate_touching`), 0/1 uint8."""
    return np.stack([separate_touching(frame) for frame in labels]).astype(np.uint8)
