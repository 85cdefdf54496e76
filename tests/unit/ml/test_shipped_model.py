"""The shipped ``nuclei`` model (inside the package) segments nuclei better than the
classical pipeline on held-out synthetic images, and ``scale`` lets it handle nuclei
bigger than it was trained on. (Real images: ``benchmarks/ml_eval.py``, docs/ml.md.)"""

from __future__ import annotations

import json
from importlib import resources

import cv2
import numpy as np
import pytest

from pixelmill.imaging.analysis.segment import segment_nuclei
from pixelmill.ml.onnx_model import OnnxModel
from pixelmill.ml.scores import instance_f1, segmentation_scores
from pixelmill.ml.spec import InputSpec
from pixelmill.ml.synthetic import NucleiConfig, nuclei_labelled


@pytest.fixture(scope="module")
def model() -> OnnxModel:
    files = resources.files("pixelmill.ml") / "models"
    card = json.loads((files / "nuclei.json").read_text())
    spec = InputSpec.model_validate(card["input_spec"])
    return OnnxModel((files / "nuclei.onnx").read_bytes(), spec, batching=False, threads=1)


def _objects(model: OnnxModel, image: np.ndarray, scale: float = 1.0) -> np.ndarray:
    return np.asarray(model.spec.objects(model.predict(image, scale=scale).mask > 0))


@pytest.mark.parametrize(
    "config",
    [NucleiConfig(size=(256, 256)), NucleiConfig.widefield()],
    ids=["default", "widefield"],
)
def test_beats_the_classical_pipeline_on_held_out_synthetic_nuclei(
    model: OnnxModel, config: NucleiConfig
) -> None:
    # generator seed 123 is never used for training; the widefield preset adds bright cell
    # bodies, saturated nuclei and nucleoli
    rows = []
    for i in range(6):
        image, truth = nuclei_labelled(123, i, config)
        ours, classical = _objects(model, image), segment_nuclei(image).labels
        rows.append(
            [
                segmentation_scores(ours > 0, truth > 0)["dice"],
                segmentation_scores(classical > 0, truth > 0)["dice"],
                instance_f1(ours, truth)["f1"],
                instance_f1(classical.astype(np.int32), truth)["f1"],
            ]
        )
    dice, dice_classical, f1, f1_classical = np.mean(rows, axis=0)
    assert dice > 0.9 and dice > dice_classical + 0.02
    assert f1 > f1_classical + 0.05


def test_scale_brings_big_nuclei_to_the_trained_size(model: OnnxModel) -> None:
    # nuclei of 8-12 px radius shown three times as big: 24-36 px, far above training
    cfg = NucleiConfig(size=(160, 160), radius=(8.0, 12.0))
    f1: dict[float, list[float]] = {1.0: [], 1 / 3: []}
    for i in range(3):
        image, truth = nuclei_labelled(123, i, cfg)
        big = cv2.resize(image, (480, 480), interpolation=cv2.INTER_LINEAR)
        big_truth = cv2.resize(
            truth.astype(np.float32), (480, 480), interpolation=cv2.INTER_NEAREST
        )
        for scale in f1:
            found = _objects(model, big, scale)
            assert found.shape == big.shape  # mask comes back at the image's size
            f1[scale].append(instance_f1(found, big_truth.astype(np.int32))["f1"])
    assert np.mean(f1[1 / 3]) > np.mean(f1[1.0]) + 0.05
