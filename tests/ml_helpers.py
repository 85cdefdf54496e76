"""Shared helpers of the ML tests: tiny synthetic datasets and a tiny trained model.

Training here is deliberately tiny (64 x 64 crops, width 4, a few steps) so the ML
suite stays fast on two shared cores.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyvips

from pixelmill.ml import datasets, synthetic
from pixelmill.ml.spec import InputSpec, TrainSpec

SMALL = synthetic.NucleiConfig(size=(64, 64))
TINY_SPEC = {
    "epochs": 2,
    "steps_per_epoch": 2,
    "batch_size": 2,
    "patch": 64,
    "depth": 2,
    "width": 4,
    "threads": 1,
}


def nuclei_zip(count: int = 6, *, seed: int = 0, size: int = 64) -> bytes:
    cfg = synthetic.NucleiConfig(size=(size, size))
    pairs = [(f"n{i:02d}", *synthetic.nuclei_sample(seed, i, cfg)) for i in range(count)]
    return datasets.build_archive(pairs)


def png(array: np.ndarray) -> bytes:
    image = pyvips.Image.new_from_array(np.ascontiguousarray(array))
    if array.dtype == np.uint16:
        image = image.copy(interpretation="grey16")
    return bytes(image.write_to_buffer(".png"))


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


@dataclass
class TinyModel:
    onnx: bytes
    spec: InputSpec
    network: Any
    result: Any


def train_tiny(**overrides: Any) -> TinyModel:
    """Train and export a tiny U-Net on six 64x64 synthetic images (about a second)."""
    from pixelmill.ml import export, training

    parsed = datasets.parse(nuclei_zip())
    result = training.train(TrainSpec(**{**TINY_SPEC, **overrides}), parsed)
    return TinyModel(
        export.to_onnx(result.network, result.input_spec), result.input_spec, result.network, result
    )


def add_model_version(repo: Any, name: str, **kw: Any) -> Any:
    """A version row of model ``name`` with placeholder metadata (a ``ModelRepository``
    contract test's fixture: nothing reads the file)."""
    return repo.add_version(
        model=name,
        task="segmentation",
        sha256="a" * 64,
        size_bytes=1,
        framework="onnx",
        input_spec={},
        train_config={},
        dataset_sha256=None,
        metrics={},
        card={},
        reference={},
        job_id=None,
        **kw,
    )
