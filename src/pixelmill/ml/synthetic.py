"""A synthetic fluorescence-nuclei generator (images + binary masks), numpy/scipy only.

What it imitates, and why: widefield/confocal DAPI or Hoechst images as labs take them.

* nuclei: ellipses with irregular (low-frequency) outlines, lognormal sizes, random
  orientation and elongation; placed densely enough to touch and overlap a little;
* chromatin texture: smoothed noise plus bright spots inside each nucleus, brightness
  varying between nuclei (cell-cycle stage), a few small very bright mitotic nuclei;
* optics: Gaussian point-spread blur; dim out-of-focus nuclei that are *not* in the mask;
* cytoplasm: in part of the images, a dim, smooth, off-centre glow around nuclei (stain
  or autofluorescence in the cell body), which is *not* nucleus;
* background: uneven illumination (smooth gradient + vignetting) and an offset;
* camera: Poisson shot noise at a random photon budget plus Gaussian read noise,
  quantised to 8 or 16 bits at a random exposure (dim images included, and some
  over-exposed ones whose brightest nuclei saturate).

Every sample is a pure function of ``(seed, index)``, so a dataset is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class NucleiConfig:
    """Ranges the generator draws from (pixels unless noted)."""

    size: tuple[int, int] = (256, 256)
    #: fraction of the field covered by nuclei (before overlaps), drawn uniformly
    coverage: tuple[float, float] = (0.04, 0.55)
    #: probability that a nucleus is placed touching the previous one (clusters)
    clustering: tuple[float, float] = (0.0, 0.6)
    #: median radius range, px
    radius: tuple[float, float] = (5.0, 16.0)
    blur_sigma: tuple[float, float] = (0.6, 2.2)
    photons: tuple[float, float] = (30.0, 800.0)
    read_noise: tuple[float, float] = (0.002, 0.03)
    #: share of images with cytoplasm glow; its size (x nucleus radius) and brightness
    #: (x nucleus brightness); its blur (x median radius)
    cytoplasm: float = 0.6
    cytoplasm_scale: tuple[float, float] = (1.5, 2.4)
    cytoplasm_level: tuple[float, float] = (0.1, 0.7)
    cytoplasm_blur: tuple[float, float] = (0.25, 0.25)
    #: share of over-exposed images (brightest nuclei saturate) and their exposure range
    over_exposed: float = 0.15
    over_exposure: tuple[float, float] = (1.0, 2.5)
    #: share of nuclei with dark nucleoli, and of kidney-shaped (indented) nuclei (0 draws
    #: nothing, so datasets made with the defaults stay identical)
    nucleoli: float = 0.0
    kidney: float = 0.0
    #: strength of the bright chromatin spots
    spots: tuple[float, float] = (0.0, 0.5)
    #: share of images whose nuclei are packed: a nucleus takes only the pixels no
    #: earlier one holds (pressed against its neighbours, as in a crowded culture,
    #: instead of lying on top of them with an outline the image does not show), and
    #: dims towards its own outline by a fraction drawn from ``edge_dimming`` (a rounded
    #: nucleus is thinner at its edge; that dip is what shows where two touching nuclei
    #: meet). 0 draws nothing.
    packed: float = 0.0
    edge_dimming: tuple[float, float] = (0.0, 0.5)

    @classmethod
    def widefield(cls, size: tuple[int, int] = (256, 256)) -> NucleiConfig:
        """Harder widefield conditions: larger and brighter cell bodies with sharper
        edges around more nuclei, over-exposure (saturated nuclei) twice as often, dark
        nucleoli. Bright cytoplasm against a saturated nucleus is what a model trained
        on the defaults mistakes for a second nucleus."""
        return cls(
            size=size,
            cytoplasm=0.75,
            cytoplasm_scale=(1.6, 3.0),
            cytoplasm_level=(0.1, 0.6),
            cytoplasm_blur=(0.1, 0.25),
            over_exposed=0.3,
            over_exposure=(1.0, 4.0),
            nucleoli=0.4,
            kidney=0.15,
            spots=(0.0, 0.9),
        )

    @classmethod
    def crowded(cls, size: tuple[int, int] = (256, 256)) -> NucleiConfig:
        """The widefield conditions with packed nuclei in every image and more of them
        in clusters: many touching nuclei whose outlines the image shows (what an
        instance head learns to separate)."""
        from dataclasses import replace

        return replace(cls.widefield(size), packed=1.0, clustering=(0.3, 0.9))


_DEFAULTS = NucleiConfig()


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> NDArray:
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    field -= field.mean()
    return np.asarray(field / (field.std() + 1e-8))


def _nucleus(
    rng: np.random.Generator,
    radius: float,
    elong: float,
    angle: float,
    cfg: NucleiConfig | None = None,
) -> tuple[NDArray, NDArray]:
    """One nucleus in its own box: (binary mask, texture in 0..1); ``cfg`` sets its
    nucleoli, kidney shapes and spot strength (none: the defaults, as ``_glow``'s cell
    bodies use)."""
    cfg = cfg or _DEFAULTS
    nucleoli, kidney = cfg.nucleoli, cfg.kidney
    half = int(np.ceil(radius * elong * 1.35)) + 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    cos, sin = np.cos(angle), np.sin(angle)
    u = (xx * cos + yy * sin) / (radius * elong)
    v = (-xx * sin + yy * cos) / (radius / elong)
    r = np.hypot(u, v)
    theta = np.arctan2(v, u)
    # irregular outline: a few low angular harmonics
    wobble = np.zeros_like(theta)
    for k in (2, 3, 4, 5):
        wobble += rng.normal(0, 0.045 / k**0.5) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    mask = r <= 1.0 + wobble
    if kidney and rng.random() < kidney:  # a disc bitten out of one side
        a, d = rng.uniform(0, 2 * np.pi), rng.uniform(0.95, 1.3) * radius
        bite = rng.uniform(0.5, 0.85) * radius
        mask &= np.hypot(xx - d * np.cos(a), yy - d * np.sin(a)) > bite
    from scipy import ndimage

    texture = 0.75 + 0.18 * _smooth_noise(rng, mask.shape, max(radius / 5, 0.8))
    spots = ndimage.gaussian_filter(
        (rng.random(mask.shape) < 0.015).astype(np.float64), max(radius / 9, 0.7)
    )
    strength = rng.uniform(*cfg.spots)
    texture += 0.9 * spots / (spots.max() + 1e-8) * strength
    # slightly brighter rim or dimmer nucleolar centre
    texture *= 1.0 + rng.uniform(-0.15, 0.2) * np.clip(r, 0, 1) ** 2
    if nucleoli and rng.random() < nucleoli:  # 1-4 dark nucleoli inside the outline
        dark = np.zeros(mask.shape)
        inside = np.argwhere(r <= 0.6)
        for y, x in inside[rng.integers(0, len(inside), size=int(rng.integers(1, 5)))]:
            dark[y, x] = 1.0
        dark = ndimage.gaussian_filter(dark, max(radius / 5, 0.8))
        texture *= 1.0 - rng.uniform(0.3, 0.65) * dark / (dark.max() + 1e-8)
    return mask, np.clip(texture, 0.05, None) * mask


def _pressed(
    rng: np.random.Generator,
    own: NDArray[np.bool_],
    texture: NDArray,
    radius: float,
    cfg: NucleiConfig,
) -> tuple[NDArray[np.bool_], NDArray] | None:
    """A packed nucleus: ``own`` (its pixels no earlier nucleus holds) reduced to its
    largest piece, and ``texture`` dimmed towards that piece's outline by a fraction drawn
    from ``cfg.edge_dimming``; ``None`` when less than 40 % of the nucleus is left (hidden:
    not drawn)."""
    import cv2
    from scipy import ndimage

    dimming = rng.uniform(*cfg.edge_dimming)
    found = cv2.connectedComponentsWithStats(own.astype(np.uint8), connectivity=8)
    count, pieces, stats = found[0], np.asarray(found[1]), np.asarray(found[2])
    if count < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    piece = pieces == best
    if piece.sum() < 0.4 * max(int((texture > 0).sum()), 1):
        return None
    # edge padding: the box's edge is outside the nucleus except where the image ends
    dist = ndimage.distance_transform_edt(np.pad(piece, 1, mode="edge"))[1:-1, 1:-1]
    dim = 1.0 - dimming * np.exp(-(dist - 1.0) / max(radius / 4, 1.0))
    return piece, texture * piece * dim


def _glow(
    rng: np.random.Generator,
    layer: NDArray,
    cy: int,
    cx: int,
    radius: float,
    level: float,
    scale_range: tuple[float, float] = (1.5, 2.4),
) -> None:
    """Add a cell body's dim glow around a nucleus at (cy, cx): a larger irregular ellipse,
    off-centre, with a faint texture (blurred later with the whole layer)."""
    scale = rng.uniform(*scale_range)
    mask, texture = _nucleus(
        rng, radius * scale, float(np.sqrt(rng.uniform(1.0, 2.2))), rng.uniform(0, np.pi)
    )
    rows, cols = layer.shape
    h = mask.shape[0] // 2
    shift = rng.normal(0, radius * 0.6, size=2)  # off-centre: a crescent on one side
    y0, x0 = int(cy + shift[0]) - h, int(cx + shift[1]) - h
    ys = slice(max(y0, 0), min(y0 + mask.shape[0], rows))
    xs = slice(max(x0, 0), min(x0 + mask.shape[1], cols))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return
    sub = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
    layer[ys, xs] = np.maximum(layer[ys, xs], level * (0.6 + 0.4 * texture[sub]) * mask[sub])


def nuclei_sample(
    seed: int, index: int, config: NucleiConfig | None = None, *, gaps: bool = False
) -> tuple[NDArray[np.generic], NDArray[np.uint8]]:
    """One synthetic image and its mask.

    Returns ``(image, mask)``: ``image`` is (rows, cols) ``uint8`` or ``uint16`` (about
    half each), ``mask`` is (rows, cols) ``uint8`` with 0 = background, 255 = nucleus.
    With ``gaps`` the mask has a background line between touching nuclei
    (:func:`separate_touching`), so a network trained on it learns to keep them apart.

    >>> image, mask = nuclei_sample(0, 0)
    >>> image.shape == mask.shape == (256, 256)
    True
    """
    image, labels = nuclei_labelled(seed, index, config)
    foreground = separate_touching(labels) if gaps else labels > 0
    return image, (foreground * 255).astype(np.uint8)


def separate_touching(labels: NDArray[np.integer]) -> NDArray[np.bool_]:
    """Foreground of an instance label image with a one-pixel background line between
    touching objects: a pixel is dropped when one of its 8 neighbours belongs to another
    object with a smaller label, so only one side of each contact gives up a pixel; lone
    outlines are untouched.

    The U-Net paper's remedy for touching cells (there: a loss weight on the separating
    background). :func:`pixelmill.ml.scores.instances` with ``grow=1`` gives the line
    back to the objects after labelling them.

    >>> lab = np.zeros((3, 6), np.int32); lab[:, :3] = 1; lab[:, 3:] = 2
    >>> separate_touching(lab).astype(int).tolist()[0]
    [1, 1, 1, 0, 1, 1]
    """
    import cv2

    lab = np.asarray(labels).astype(np.float32)
    # the smallest object label among each pixel's neighbours (background is "neutral")
    neutral = np.where(lab > 0, lab, np.float32(np.inf))
    low = np.asarray(cv2.erode(neutral, np.ones((3, 3), np.uint8)))
    return np.asarray((lab > 0) & (low >= lab))


def nuclei_labelled(
    seed: int, index: int, config: NucleiConfig | None = None
) -> tuple[NDArray[np.generic], NDArray[np.int32]]:
    """Like :func:`nuclei_sample`, with instance labels (int32, 0 = background, where
    nuclei overlap the one drawn last wins) instead of the binary mask."""
    from scipy import ndimage

    cfg = config or NucleiConfig()
    rng = np.random.default_rng([seed, index])
    rows, cols = cfg.size
    signal = np.zeros((rows, cols))
    labels = np.zeros((rows, cols), dtype=np.int32)
    ghosts = np.zeros((rows, cols))
    median_r = rng.uniform(*cfg.radius)
    count = max(1, int(rng.uniform(*cfg.coverage) * rows * cols / (np.pi * median_r**2)))
    clustering = rng.uniform(*cfg.clustering)
    cytoplasm = np.zeros((rows, cols))
    glow = rng.uniform(0.2, 1.0) if rng.random() < cfg.cytoplasm else 0.0  # share of cells
    glow_level = rng.uniform(*cfg.cytoplasm_level)
    cy, cx = int(rng.integers(0, rows)), int(rng.integers(0, cols))
    pack = cfg.packed > 0 and rng.random() < cfg.packed  # defaults: no draw
    for _ in range(count):
        mitotic = rng.random() < 0.04
        radius = median_r * (0.55 if mitotic else float(rng.lognormal(0, 0.22)))
        elong = float(np.sqrt(rng.uniform(1.0, 1.9 if not mitotic else 2.6)))
        mask, texture = _nucleus(rng, max(radius, 2.5), elong, rng.uniform(0, np.pi), cfg)
        brightness = rng.uniform(1.6, 2.6) if mitotic else rng.lognormal(0, 0.35)
        if rng.random() < clustering:  # touch the previous nucleus
            step = radius * rng.uniform(1.4, 2.1)
            a = rng.uniform(0, 2 * np.pi)
            cy = int(np.clip(cy + step * np.sin(a), 0, rows - 1))
            cx = int(np.clip(cx + step * np.cos(a), 0, cols - 1))
        else:
            cy, cx = int(rng.integers(0, rows)), int(rng.integers(0, cols))
        y0, x0 = cy - mask.shape[0] // 2, cx - mask.shape[0] // 2
        ys = slice(max(y0, 0), min(y0 + mask.shape[0], rows))
        xs = slice(max(x0, 0), min(x0 + mask.shape[1], cols))
        sub = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
        if rng.random() < 0.12:  # out of focus: blurred, dim, not annotated
            ghosts[ys, xs] = np.maximum(ghosts[ys, xs], 0.25 * brightness * texture[sub])
            continue
        own, shade = mask[sub], texture[sub]
        if pack:
            pressed = _pressed(rng, own & (labels[ys, xs] == 0), shade, radius, cfg)
            if pressed is None:
                continue
            own, shade = pressed
        signal[ys, xs] = np.maximum(signal[ys, xs], brightness * shade)
        labels[ys, xs][own] = labels.max() + 1  # later nuclei lie on top (or, packed, beside)
        if rng.random() < glow:
            _glow(rng, cytoplasm, cy, cx, radius, glow_level * brightness, cfg.cytoplasm_scale)
    psf = rng.uniform(*cfg.blur_sigma)
    image = ndimage.gaussian_filter(signal, psf) + ndimage.gaussian_filter(ghosts, psf * 4)
    if glow > 0:
        blur = cfg.cytoplasm_blur
        sharp = blur[0] if blur[0] == blur[1] else rng.uniform(*blur)  # defaults: no draw
        image += ndimage.gaussian_filter(cytoplasm, median_r * sharp)
    # uneven illumination: gradient x vignetting x smooth blotches, plus offset
    yy, xx = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    gy, gx = rng.normal(0, 0.35, size=2)
    illum = 1.0 + gy * (yy - 0.5) + gx * (xx - 0.5)
    illum *= 1.0 - rng.uniform(0, 0.35) * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2) * 2
    illum = np.clip(illum, 0.35, None)
    background = rng.uniform(0.02, 0.25) * (
        1 + 0.4 * _smooth_noise(rng, (rows, cols), max(rows, cols) / 6)
    )
    image = image * illum + np.clip(background, 0, None)
    image /= max(float(np.percentile(image, 99.9)), 1e-6)
    photons = np.exp(rng.uniform(*np.log(cfg.photons)))
    image = rng.poisson(np.clip(image, 0, None) * photons) / photons
    image = image + rng.normal(0, rng.uniform(*cfg.read_noise), image.shape)
    if rng.random() < 1.0 - cfg.over_exposed:
        exposure = rng.uniform(0.25, 0.95)
    else:
        exposure = rng.uniform(*cfg.over_exposure)
    if rng.random() < 0.5:
        out: NDArray[np.generic] = np.clip(image * exposure * 255, 0, 255).astype(np.uint8)
    else:
        out = np.clip(image * exposure * 65535 * rng.uniform(0.05, 1.0), 0, 65535).astype(np.uint16)
    return out, labels


def nuclei_dataset(
    count: int, *, seed: int = 0, config: NucleiConfig | None = None, gaps: bool = False
) -> list[tuple[NDArray[np.generic], NDArray[np.uint8]]]:
    """``count`` samples of :func:`nuclei_sample`, indices 0..count-1."""
    return [nuclei_sample(seed, i, config, gaps=gaps) for i in range(count)]
