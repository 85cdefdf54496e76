"""Export a trained network to ONNX and check it against torch.

We use the legacy TorchScript exporter (``torch.onnx.export(..., dynamo=False)``): it
needs only the ``onnx`` package (pinned in the ``train`` extra), handles our plain
conv nets with dynamic batch/height/width axes, and exports in about a second. The
dynamo exporter would add ``onnxscript`` and its dependencies for no gain here.
"""

from __future__ import annotations

import io
import threading
import warnings
from typing import Any

import numpy as np

from pixelmill.errors import PixelmillError
from pixelmill.ml.spec import InputSpec

OPSET = 17
INPUT, OUTPUT = "input", "output"

#: torch's exporter keeps process-wide state (``GLOBALS.in_onnx_export``): two exports at
#: once, from two training jobs on two worker threads, fail the second one
_EXPORTING = threading.Lock()


class ExportMismatch(PixelmillError):
    slug = "export-mismatch"
    title = "The exported ONNX model does not match torch"


def to_onnx(network: Any, spec: InputSpec, *, frames: int | None = None) -> bytes:
    """Serialise ``network`` (eval mode) with its output activation to ONNX bytes.

    Input ``input`` float32 (N, C, H, W); output ``output`` float32 probabilities:
    (N, 1, H, W) for segmentation (sigmoid), (N, classes) for classification (softmax).
    N, H and W are dynamic axes. With ``frames`` (a time-lapse network such as
    :class:`~pixelmill.ml.networks.RecurrentUNet`) input and output are (N, T, C, H, W)
    with T = ``frames`` fixed (the recurrence is unrolled over it).
    """
    import onnx
    import torch

    from pixelmill.ml.networks import WithActivation

    wrapped = WithActivation(
        network, "sigmoid" if spec.task == "segmentation" else "softmax"
    ).eval()
    side = spec.size or spec.multiple * 4
    lead = (1, frames) if frames else (1,)
    sample = torch.zeros(*lead, spec.channels, side, side)
    k = len(lead)  # the first spatial axis is k + 1
    axes = {INPUT: {0: "batch", k + 1: "height", k + 2: "width"}}
    axes[OUTPUT] = dict(axes[INPUT]) if spec.task == "segmentation" else {0: "batch"}
    buf = io.BytesIO()
    with _EXPORTING, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice
        torch.onnx.export(
            wrapped,
            (sample,),
            buf,  # type: ignore[arg-type]
            dynamo=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
        )
    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model)
    return buf.getvalue()


def check(
    onnx_bytes: bytes,
    network: Any,
    spec: InputSpec,
    *,
    atol: float = 1e-4,
    seed: int = 0,
    frames: int | None = None,
) -> float:
    """Run torch and onnxruntime on the same random inputs (two shapes, batch 2; with
    ``frames``, T of them) and return the largest absolute difference; raise
    :class:`ExportMismatch` above ``atol``."""
    import onnxruntime as ort
    import torch

    from pixelmill.ml.networks import WithActivation

    wrapped = WithActivation(
        network, "sigmoid" if spec.task == "segmentation" else "softmax"
    ).eval()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    sides = (
        [(spec.size, spec.size)]
        if spec.size
        else [(spec.multiple * 4, spec.multiple * 6), (spec.multiple * 8,) * 2]
    )
    for rows, cols in sides:
        lead = (2, frames) if frames else (2,)
        x = rng.random((*lead, spec.channels, rows, cols), dtype=np.float32)
        with torch.inference_mode():
            expected = wrapped(torch.from_numpy(x)).numpy()
        got = session.run([OUTPUT], {INPUT: x})[0]
        worst = max(worst, float(np.max(np.abs(expected - got))))
    if worst > atol:
        raise ExportMismatch(f"ONNX output differs from torch by {worst:.2e} (> {atol:.0e})")
    return worst
