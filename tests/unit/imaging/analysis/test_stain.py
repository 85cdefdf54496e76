"""Colour deconvolution and stain normalisation on images made from known stains."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis import stain
from tests.unit.imaging.analysis import synthetic as syn


def concentration_maps(shape: tuple[int, int] = (64, 64), seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "hematoxylin": rng.uniform(0, 0.8, shape),
        "dab": rng.uniform(0, 0.6, shape),
    }


def test_deconvolution_recovers_known_concentrations() -> None:
    # given an RGB image made by Beer-Lambert from known H and DAB concentrations
    truth = concentration_maps()
    rgb = syn.brightfield(truth)
    # when it is deconvolved with the H-DAB vectors
    conc = stain.deconvolve(rgb, stains="hdab")
    # then each stain's concentration comes back (8-bit quantisation: a few hundredths OD)
    assert conc.dtype == np.float32
    np.testing.assert_allclose(conc[..., 0], truth["hematoxylin"], atol=0.03)
    np.testing.assert_allclose(conc[..., 1], truth["dab"], atol=0.03)
    assert np.abs(conc[..., 2]).max() < 0.03  # nothing left in the residual


def test_sixteen_bit_and_float_inputs_deconvolve_more_precisely() -> None:
    truth = concentration_maps()
    od = truth["hematoxylin"][..., None] * syn.HEMATOXYLIN + truth["dab"][..., None] * syn.DAB
    light = 10.0 ** (-od)
    for image, tol in (
        ((light * 65535 + 0.5).astype(np.uint16), 2e-3),
        (light.astype(np.float32), 1e-4),
    ):
        conc = stain.deconvolve(image, stains="hdab")
        np.testing.assert_allclose(conc[..., 1], truth["dab"], atol=tol)


def test_stain_channel_and_reconstruction() -> None:
    truth = concentration_maps()
    rgb = syn.brightfield(truth)
    np.testing.assert_allclose(stain.stain_channel(rgb, "dab"), truth["dab"], atol=0.03)
    dab_only = stain.reconstruct(stain.deconvolve(rgb, stains="hdab"), stains="hdab", keep=(1,))
    expected = syn.brightfield({"dab": truth["dab"]})
    assert np.abs(dab_only.astype(int) - expected).max() <= 3
    with pytest.raises(InvalidParameter, match="unknown stain"):
        stain.stain_channel(rgb, "purple")


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 1), (8, 8, 4)])
def test_deconvolution_needs_rgb(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidParameter, match="3 channel"):
        stain.deconvolve(np.zeros(shape, np.uint8))


def he_image(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (96, 96)
    h = np.where(rng.random(shape) < 0.4, rng.uniform(0.3, 1.5, shape), 0.0)
    e = np.where(rng.random(shape) < 0.7, rng.uniform(0.2, 0.9, shape), 0.0)
    od = h[..., None] * vectors[0] + e[..., None] * vectors[1]
    return np.clip(255 * 10 ** (-od) + 0.5, 0, 255).astype(np.uint8)


def angle(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


def test_macenko_finds_the_stain_vectors() -> None:
    vectors = np.stack([syn.HEMATOXYLIN, syn.EOSIN])
    found = stain.estimate_macenko(he_image(vectors))
    assert angle(found.vectors[0], syn.HEMATOXYLIN) < 3
    assert angle(found.vectors[1], syn.EOSIN) < 3


def test_macenko_normalisation_maps_other_staining_onto_the_target() -> None:
    # given the same tissue stained with shifted vectors, and a target stained normally
    target_vectors = stain.MACENKO_REFERENCE / np.linalg.norm(
        stain.MACENKO_REFERENCE, axis=1, keepdims=True
    )
    shifted = np.stack(
        [syn.HEMATOXYLIN + np.array([0.1, -0.1, 0.15]), syn.EOSIN + np.array([0.2, 0, 0.1])]
    )
    shifted /= np.linalg.norm(shifted, axis=1, keepdims=True)
    source, target = he_image(shifted), he_image(target_vectors)
    # when the source is normalised to the target's stains
    out = stain.normalize_macenko(source, target=stain.estimate_macenko(target))
    # then it looks like the target (much closer than before)
    before = np.abs(source.astype(int) - target).mean()
    after = np.abs(out.astype(int) - target).mean()
    assert after < before / 3
    assert out.dtype == np.uint8 and out.shape == source.shape


def test_macenko_refuses_blank_images() -> None:
    with pytest.raises(InvalidParameter, match="too little stained tissue"):
        stain.estimate_macenko(np.full((32, 32, 3), 250, np.uint8))


def test_reinhard_matches_target_statistics() -> None:
    source = he_image(np.stack([syn.HEMATOXYLIN, syn.EOSIN]), seed=1)
    target = he_image(np.stack([syn.DAB, syn.EOSIN]), seed=2)
    mean, std = stain.lab_statistics(target)
    out = stain.normalize_reinhard(source, target_mean=mean, target_std=std)
    got_mean, got_std = stain.lab_statistics(out)
    np.testing.assert_allclose(got_mean, mean, atol=3.0)  # less where RGB clips
    np.testing.assert_allclose(got_std, std, rtol=0.1, atol=1.0)
    sixteen = stain.normalize_reinhard(
        source.astype(np.uint16) * 257, target_mean=mean, target_std=std
    )
    assert sixteen.dtype == np.uint16
