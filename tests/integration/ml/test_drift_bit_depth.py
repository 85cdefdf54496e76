"""Drift is computed in the model's own input normalisation: the shipped nuclei model,
served the same scenes as 8-bit, 12-bit-in-16-bit and 16-bit images, flags no drift
(before, a 12-in-16-bit image scored PSI ~3.8 against 0.25 on every request)."""

from __future__ import annotations

import numpy as np

from pixelmill.ml import synthetic
from pixelmill.runtime.container import Container

CFG = synthetic.NucleiConfig.widefield((128, 128))


def _as(depth: str, image: np.ndarray) -> np.ndarray:
    scene = image.astype(np.float64) / float(np.iinfo(image.dtype).max)
    if depth == "8-bit":
        return np.round(scene * 255).astype(np.uint8)
    if depth == "12-in-16-bit":
        return np.round(scene * 4095).astype(np.uint16)
    return np.round(scene * 65535).astype(np.uint16)


def test_8_12_in_16_and_16_bit_versions_of_the_same_images_flag_no_drift(
    container: Container,
) -> None:
    shipped = container.models.ensure_default()
    assert shipped is not None
    scenes = [
        synthetic.nuclei_sample(7, i, CFG)[0]
        for i in range(container.settings.ml.drift_min_samples)
    ]
    for depth in ("8-bit", "12-in-16-bit", "16-bit"):
        container.inference.close()  # a fresh drift window per bit depth
        predictor = container.inference.resolver("nuclei@production")
        for scene in scenes:
            predictor.predict(_as(depth, scene))
        state = container.inference.drift("nuclei@production")
        assert state["window"] == len(scenes)
        assert not state["flagged"], (depth, state["score"])
        assert state["score"] < state["threshold"], (depth, state["score"])
