"""What the ``segment`` operation receives from ``ctx.resolve_model(ref)``."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from pixelmill.ml.onnx_model import Prediction
from pixelmill.ml.spec import InputSpec
from pixelmill.services.inference.loaded import LoadedModel


class _Runs(Protocol):
    """What a predictor needs of the inference service (which makes predictors: naming
    the service here would make an import cycle)."""

    def run(
        self,
        loaded: LoadedModel,
        image: NDArray[np.generic],
        *,
        threshold: float | None = None,
        scale: float = 1.0,
        labels: NDArray[np.integer] | None = None,
        frames: bool = False,
    ) -> Prediction: ...


class Predictor:
    """What the ``segment`` operation receives from ``ctx.resolve_model(ref)``."""

    def __init__(self, service: _Runs, loaded: LoadedModel) -> None:
        self._service = service
        self._loaded = loaded
        self.ref = loaded.version.ref
        self.input_spec = InputSpec.model_validate(loaded.version.input_spec)

    def predict(
        self, image: NDArray[np.generic], *, threshold: float | None = None, scale: float = 1.0
    ) -> Prediction:
        return self._service.run(self._loaded, image, threshold=threshold, scale=scale)

    def predict_frames(
        self, frames: NDArray[np.generic], *, threshold: float | None = None, scale: float = 1.0
    ) -> Prediction:
        """A time-lapse model on frames (T, H, W[, bands]): one mask per frame."""
        return self._service.run(
            self._loaded, frames, threshold=threshold, scale=scale, frames=True
        )
