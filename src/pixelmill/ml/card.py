"""The model card: everything the registry keeps about a trained version, as JSON."""

from __future__ import annotations

import hashlib
from typing import Any


def model_card(
    name: str,
    spec: Any,
    result: Any,
    dataset: Any,
    onnx_bytes: bytes,
    max_abs_diff: float,
    command: str,
    description: str = "",
) -> dict[str, Any]:
    """Everything the registry keeps about a trained version, as JSON."""
    import torch

    return {
        "name": name,
        "description": description,
        "framework": "onnx",
        "task": spec.task,
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "size_bytes": len(onnx_bytes),
        "input_spec": result.input_spec.model_dump(mode="json"),
        "train_config": spec.model_dump(mode="json"),
        "dataset": {"sha256": dataset.sha256, **dataset.summary()},
        "metrics": result.metrics,
        "history": result.history,
        "training": {
            "seconds": result.seconds,
            "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early,
            "images_seen": result.images_seen,
            "torch": torch.__version__,
            "onnx_max_abs_diff": max_abs_diff,
            **result.extra,
        },
        "command": command,
        "reference": result.reference,
    }
