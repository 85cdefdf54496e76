"""Synthetic images with known truth for the analysis tests (made in the tests, no files).

Objects are disks and ellipses placed on a grid with jitter, so their count, areas and
masks are exact; the image adds blur, noise and an uneven background on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage import draw

#: Ruifrok & Johnston unit OD vectors
HEMATOXYLIN = np.array([0.650, 0.704, 0.286]) / np.linalg.norm([0.650, 0.704, 0.286])
DAB = np.array([0.268, 0.570, 0.776]) / np.linalg.norm([0.268, 0.570, 0.776])
EOSIN = np.array([0.072, 0.990, 0.105]) / np.linalg.norm([0.072, 0.990, 0.105])


@dataclass
class Scene:
    """``image`` float32 (H, W) on 0..1, ``truth`` int32 labels (0 background)."""

    image: np.ndarray
    truth: np.ndarray

    @property
    def count(self) -> int:
        return int(self.truth.max())

    def areas(self) -> np.ndarray:
        return np.bincount(self.truth.ravel())[1:]


def blobs(
    shape: tuple[int, int] = (256, 256),
    *,
    spacing: int = 40,
    radius: tuple[float, float] = (8, 13),
    ellipses: bool = False,
    seed: int = 0,
    foreground: float = 0.7,
    background: float = 0.1,
) -> Scene:
    """Separate disks (or ellipses) on a jittered grid, intensity ``foreground`` on
    ``background``; no noise or blur yet."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.int32)
    k = 0
    margin = spacing // 2
    for r in range(margin, shape[0] - margin + 1, spacing):
        for c in range(margin, shape[1] - margin + 1, spacing):
            k += 1
            jr, jc = rng.uniform(-3, 3, 2)
            if ellipses:
                a, b = rng.uniform(*radius, 2)
                rr, cc = draw.ellipse(
                    r + jr, c + jc, a, b * 0.7, shape=shape, rotation=rng.uniform(0, np.pi)
                )
            else:
                rr, cc = draw.disk((r + jr, c + jc), rng.uniform(*radius), shape=shape)
            truth[rr, cc] = k
    image = np.where(truth > 0, foreground, background).astype(np.float32)
    return Scene(image, truth)


def touching_pairs(shape: tuple[int, int] = (200, 260), *, radius: float = 11) -> Scene:
    """Pairs of equal disks whose centres are 1.6 radii apart (they overlap)."""
    truth = np.zeros(shape, np.int32)
    k = 0
    for r in range(40, shape[0] - 30, 70):
        for c in range(35, shape[1] - 50, 90):
            for dc in (0.0, 1.6 * radius):
                k += 1
                rr, cc = draw.disk((r, c + dc), radius, shape=shape)
                free = truth[rr, cc] == 0
                truth[rr[free], cc[free]] = k
    image = np.where(truth > 0, 0.8, 0.1).astype(np.float32)
    return Scene(image, truth)


def degrade(
    image: np.ndarray,
    *,
    blur: float = 1.0,
    noise: float = 0.02,
    gradient: float = 0.0,
    seed: int = 1,
) -> np.ndarray:
    """Gaussian blur (sigma px), additive Gaussian noise (std) and a linear background
    ramp adding up to ``gradient`` across the image; float32, clipped to 0..1."""
    import cv2

    out = image.astype(np.float32)
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    if gradient:
        ramp = np.linspace(0, gradient, image.shape[1], dtype=np.float32)
        out = out + ramp[None, :]
    if noise:
        out = out + np.random.default_rng(seed).normal(0, noise, image.shape).astype(np.float32)
    return np.clip(out, 0, 1)


def as_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def as_uint16(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 65535 + 0.5).astype(np.uint16)


def brightfield(concentrations: dict[str, np.ndarray]) -> np.ndarray:
    """uint8 RGB from stain concentrations (OD units) by Beer-Lambert:
    ``I = 255 * 10^-(sum c_s v_s)``."""
    vectors = {"hematoxylin": HEMATOXYLIN, "dab": DAB, "eosin": EOSIN}
    first = next(iter(concentrations.values()))
    od = np.zeros((*first.shape, 3))
    for name, conc in concentrations.items():
        od += conc[..., None] * vectors[name]
    return np.clip(255 * 10 ** (-od) + 0.5, 0, 255).astype(np.uint8)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return float(2 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b)))


def matched_areas(labels: np.ndarray, truth: np.ndarray) -> list[tuple[int, int]]:
    """(truth area, found area) of each truth object and the found object overlapping
    it most."""
    pairs = []
    for k in range(1, int(truth.max()) + 1):
        inside = labels[truth == k]
        hits = inside[inside > 0]
        if hits.size == 0:
            pairs.append((int((truth == k).sum()), 0))
            continue
        best = np.bincount(hits).argmax()
        pairs.append((int((truth == k).sum()), int((labels == best).sum())))
    return pairs
