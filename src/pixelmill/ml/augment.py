"""Training examples: random crops, flips, 90° rotations, intensity jitter and elastic
warps, and random batches of them.

Images are normalised (C, H, W) float32 planes, masks (1, H, W) float32 0/1; sizes in
pixels. Every random draw comes from the ``numpy.random.Generator`` passed in, so a run is
reproducible from its seed (and resumable from the generator's state).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from pixelmill.ml.spec import TrainSpec


def random_crop(
    rng: np.random.Generator, x: NDArray[np.float32], y: NDArray[np.float32], size: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The same random ``size`` x ``size`` window of image and mask (padded by reflection,
    or edge copies when too small to reflect, if smaller than the window)."""
    _, rows, cols = x.shape
    if rows < size or cols < size:
        pr, pc = max(0, size - rows), max(0, size - cols)
        mode: Literal["reflect", "edge"] = "reflect" if pr < rows and pc < cols else "edge"
        x = np.pad(x, ((0, 0), (0, pr), (0, pc)), mode=mode)
        y = np.pad(y, ((0, 0), (0, pr), (0, pc)), mode=mode)
        rows, cols = x.shape[1:]
    r = int(rng.integers(0, rows - size + 1))
    c = int(rng.integers(0, cols - size + 1))
    return x[:, r : r + size, c : c + size], y[:, r : r + size, c : c + size]


def _elastic(
    rng: np.random.Generator,
    arrays: list[NDArray[np.float32]],
    alpha: float = 8.0,
    sigma: float = 6.0,
) -> list[NDArray[np.float32]]:
    """One smooth random displacement field (``alpha`` px, smoothed by ``sigma`` px) applied
    to every array: the first (the image) interpolated linearly, the rest (masks) nearest."""
    from scipy import ndimage

    _, rows, cols = arrays[0].shape
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, (rows, cols)), sigma) * alpha
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, (rows, cols)), sigma) * alpha
    yy, xx = np.mgrid[0:rows, 0:cols]
    coords = [yy + dy, xx + dx]
    out = []
    for k, arr in enumerate(arrays):
        order = 1 if k == 0 else 0
        out.append(
            np.stack(
                [ndimage.map_coordinates(p, coords, order=order, mode="reflect") for p in arr]
            ).astype(np.float32)
        )
    return out


def augment(
    rng: np.random.Generator, x: NDArray[np.float32], y: NDArray[np.float32] | None, spec: TrainSpec
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
    """Random flips, 90° rotations, intensity jitter and (optionally) elastic warps.
    Geometric changes apply to image and mask alike; intensity ones to the image only."""
    if spec.augment_flips:
        if rng.random() < 0.5:
            x, y = x[:, ::-1], None if y is None else y[:, ::-1]
        if rng.random() < 0.5:
            x, y = x[:, :, ::-1], None if y is None else y[:, :, ::-1]
    if spec.augment_rot90:
        k = int(rng.integers(0, 4))
        x, y = np.rot90(x, k, (1, 2)), None if y is None else np.rot90(y, k, (1, 2))
    if spec.augment_elastic and y is not None and rng.random() < 0.5:
        x, y = _elastic(rng, [np.ascontiguousarray(x), np.ascontiguousarray(y)])
        y = (y > 0.5).astype(np.float32)
    if spec.augment_intensity:
        gamma = float(np.exp(rng.normal(0, 0.25)))
        jittered = np.clip(x, 0, None) ** gamma * rng.uniform(0.7, 1.3) + rng.normal(0, 0.05)
        if rng.random() < 0.3:
            jittered = jittered + rng.normal(0, rng.uniform(0.01, 0.08), x.shape)
        x = jittered.astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32), None if y is None else np.ascontiguousarray(y)


def batch(
    rng: np.random.Generator, xs: list[NDArray[np.float32]], ys: list[Any], spec: TrainSpec
) -> tuple[NDArray[np.float32], NDArray[Any]]:
    """``spec.batch_size`` random examples, augmented: (N, C, H, W) float32 images and
    (N, 1, H, W) float32 masks (segmentation, cropped to ``spec.patch``) or (N,) int64
    class indices."""
    idx = rng.integers(0, len(xs), size=spec.batch_size)
    bx: list[NDArray[np.float32]] = []
    by: list[Any] = []
    for i in idx:
        if spec.task == "segmentation":
            x, y = random_crop(rng, xs[i], ys[i], spec.patch)
            x, y_aug = augment(rng, x, y, spec)
            by.append(y_aug)
        else:
            x, _ = augment(rng, xs[i], None, spec)
            by.append(ys[i])
        bx.append(x)
    return np.stack(bx), np.stack(by) if spec.task == "segmentation" else np.asarray(
        by, dtype=np.int64
    )
