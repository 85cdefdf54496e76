"""What a training run returns, and how it ends when cancelled (shared by the image
and the graph training loops)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pixelmill.errors import Conflict
from pixelmill.ml.spec import InputSpec


class TrainingCancelled(Conflict):
    """Raised from the training loops (:func:`pixelmill.ml.training.train`) when ``should_stop()`` turned true."""

    slug = "cancelled"
    title = "Training was cancelled"


@dataclass
class TrainResult:
    network: Any  #: the trained torch module (best checkpoint, eval mode)
    input_spec: InputSpec
    metrics: dict[str, float]  #: validation metrics of the best epoch
    history: list[dict[str, Any]]
    epochs_run: int
    stopped_early: bool
    seconds: float
    images_seen: int
    reference: dict[str, Any]  #: drift reference of the training inputs
    checkpoint: bytes = b""  #: ``torch.save`` of the best state dict
    extra: dict[str, Any] = field(default_factory=dict)
