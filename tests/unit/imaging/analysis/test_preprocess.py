"""Preprocessing: every dtype and shape goes through, and each op does its job."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis import preprocess as pre
from tests.unit.imaging.analysis import synthetic as syn

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
SHAPES = [(48, 64), (48, 64, 3), (48, 64, 2)]


def sample(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.random(shape)
    if np.dtype(dtype).kind == "f":
        return base.astype(dtype)
    return (base * np.iinfo(dtype).max).astype(dtype)


OPS = {
    "clahe": lambda a: pre.clahe(a, clip_limit=2.0, tiles=4),
    "median": lambda a: pre.denoise(a, method="median", size=3),
    "median7": lambda a: pre.denoise(a, method="median", size=7),
    "bilateral": lambda a: pre.denoise(a, method="bilateral"),
    "nlm": lambda a: pre.denoise(a, method="nlm"),
    "gaussian": lambda a: pre.denoise(a, method="gaussian", sigma=1),
    "unsharp": lambda a: pre.unsharp_mask(a, sigma=1, amount=1),
    "rolling_ball": lambda a: pre.subtract_background(a, radius=12),
    "tophat": lambda a: pre.subtract_background(a, radius=5, method="tophat"),
    "normalize": lambda a: pre.normalize_percentile(a),
}


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("shape", SHAPES, ids=["grey", "rgb", "two-channel"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_shape_and_dtype_are_kept(name: str, shape: tuple[int, ...], dtype: type) -> None:
    image = sample(shape, dtype)
    out = OPS[name](image)
    assert out.shape == image.shape
    assert out.dtype == image.dtype


def test_clahe_raises_local_contrast_and_keeps_hue() -> None:
    flat = (np.random.default_rng(0).random((128, 128)) * 30 + 100).astype(np.uint8)
    assert pre.clahe(flat, clip_limit=4).std() > 2 * flat.std()
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 0] = np.linspace(80, 120, 64, dtype=np.uint8)
    out = pre.clahe(rgb, clip_limit=4)
    assert (out[..., 0] >= out[..., 1]).all()  # still red


@pytest.mark.parametrize("method", ["median", "bilateral", "nlm", "gaussian"])
def test_denoising_brings_a_noisy_image_closer_to_the_clean_one(method: str) -> None:
    scene = syn.blobs((128, 128))
    clean = syn.as_uint8(syn.degrade(scene.image, noise=0))
    noisy = syn.as_uint8(syn.degrade(scene.image, noise=0.08))
    out = pre.denoise(noisy, method=method, strength=0.1, sigma=1.5)

    def error(a: np.ndarray) -> float:
        return float(np.abs(a.astype(float) - clean).mean())

    assert error(out) < 0.7 * error(noisy)


def test_salt_and_pepper_is_removed_by_the_median() -> None:
    image = np.full((32, 32), 100, np.uint16)
    image[::5, ::7] = 65535
    assert (pre.denoise(image, method="median", size=3) == 100).all()


def test_unsharp_mask_steepens_edges_and_amount_zero_is_identity() -> None:
    step = np.zeros((16, 16), np.float32)
    step[:, 8:] = 0.5
    sharp = pre.unsharp_mask(step, sigma=1, amount=1)
    assert sharp[0, 8] > 0.5 and sharp[0, 7] < 0.0  # floats are not clipped
    assert np.array_equal(pre.unsharp_mask(step, amount=0), step)


@pytest.mark.parametrize("method", ["rolling_ball", "tophat"])
def test_background_subtraction_flattens_a_ramp_and_keeps_objects(method: str) -> None:
    scene = syn.blobs((160, 240), radius=(5, 8), spacing=40)
    image = syn.as_uint16(syn.degrade(scene.image, blur=0, noise=0, gradient=0.5))
    out = pre.subtract_background(image, radius=25, method=method).astype(float) / 65535
    inside, outside = out[scene.truth > 0], out[scene.truth == 0]
    # the ramp (0..0.5) is gone away from the borders, where the ball cannot climb it
    interior = (scene.truth == 0)[:, 25:-25]
    assert out[:, 25:-25][interior].mean() < 0.02
    assert outside.mean() < 0.06
    assert inside.mean() == pytest.approx(0.6, abs=0.05)  # the objects' contrast is kept


def test_light_background_is_pulled_to_white() -> None:
    scene = syn.blobs((120, 120), foreground=0.3, background=0.8)
    image = syn.as_uint8(syn.degrade(scene.image, blur=0, noise=0, gradient=-0.3))
    out = pre.subtract_background(image, radius=20, light_background=True)
    assert out[scene.truth == 0].mean() > 250
    assert out[scene.truth > 0].mean() < 160


def test_percentile_normalisation() -> None:
    ramp = np.arange(10_000, dtype=np.uint16).reshape(100, 100)
    out = pre.normalize_percentile(ramp, low=1, high=99)
    lo, hi = np.percentile(ramp, [1, 99])
    assert pre.percentiles(ramp, 1, 99) == pytest.approx((lo, hi))
    assert out[ramp <= lo].max() == 0 and out[ramp >= hi].min() == 65535
    assert pre.normalize_percentile(np.full((4, 4), 7, np.uint8)).max() == 0
    floats = pre.normalize_percentile(ramp.astype(np.float32) * 3.0)
    assert floats.min() == 0.0 and floats.max() == 1.0
    with pytest.raises(InvalidParameter):
        pre.normalize_percentile(ramp, low=50, high=10)


def test_channel_selection() -> None:
    stack = np.stack([np.full((4, 4), i, np.uint16) for i in range(5)], axis=-1)
    assert pre.select_channels(stack, [3]).tolist() == np.full((4, 4), 3).tolist()
    assert pre.select_channels(stack, [4, 0])[0, 0].tolist() == [4, 0]
    assert pre.select_channels(stack, [-1])[0, 0] == 4
    with pytest.raises(InvalidParameter, match="channel 5 does not exist"):
        pre.select_channels(stack, [5])


@pytest.mark.parametrize("bad", [np.zeros((0, 5), np.uint8), np.zeros((2, 2, 2, 2), np.uint8)])
def test_empty_or_wrongly_shaped_arrays_are_refused(bad: np.ndarray) -> None:
    with pytest.raises(InvalidParameter):
        pre.clahe(bad)
