"""What the ``segment`` operation receives from ``ctx.resolve_model(ref)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from pixelmill.ml.onnx_model import Prediction
from pixelmill.ml.spec import InputSpec
from pixelmill.services.inference.loaded import LoadedModel

if TYPE_CHECKING:
    from pixelmill.services.inference.service import InferenceService


class Predictor:
    """What the ``segment`` operation receives from ``ctx.resolve_model(ref)``."""

    def __init__(self, service: InferenceService, loaded: LoadedModel) -> None:
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
