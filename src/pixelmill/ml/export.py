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
    :class:`~pixelmill.ml.networks.RecurrentUNet`; default ``spec.frames`` for a
    ``timelapse`` spec) input and output are (N, T, C, H, W) with T = ``frames`` fixed
    (the recurrence is unrolled over it). Graph models:
    :func:`graph_to_onnx`.
    """
    import onnx
    import torch

    from pixelmill.ml.networks import WithActivation

    if spec.task == "graph":
        return graph_to_onnx(network, len(spec.features))

    frames = frames or spec.frames if spec.task == "timelapse" else frames
    dense = spec.task in ("segmentation", "timelapse")
    wrapped = WithActivation(network, "sigmoid" if dense else "softmax").eval()
    side = spec.size or spec.multiple * 4
    lead = (1, frames) if frames else (1,)
    sample = torch.zeros(*lead, spec.channels, side, side)
    k = len(lead)  # the first spatial axis is k + 1
    axes = {INPUT: {0: "batch", k + 1: "height", k + 2: "width"}}
    axes[OUTPUT] = dict(axes[INPUT]) if dense else {0: "batch"}
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
    :class:`ExportMismatch` above ``atol``. Graph models: :func:`graph_check`."""
    import onnxruntime as ort
    import torch

    from pixelmill.ml.networks import WithActivation

    if spec.task == "graph":
        return graph_check(onnx_bytes, network, len(spec.features), atol=atol, seed=seed)

    frames = frames or spec.frames if spec.task == "timelapse" else frames
    dense = spec.task in ("segmentation", "timelapse")
    wrapped = WithActivation(network, "sigmoid" if dense else "softmax").eval()
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


#: the inputs of an exported cell-graph network
NODES, EDGES = "nodes", "edges"


def graph_to_onnx(network: Any, features: int) -> bytes:
    """Serialise a cell-graph network (eval mode) with its softmax to ONNX bytes.

    Inputs ``nodes`` float32 (N, features) and ``edges`` int64 (2, E) (source, target
    node indices); output ``output`` float32 (N, classes) class probabilities. N and E
    are dynamic (E may be 0).
    """
    import onnx
    import torch

    from pixelmill.ml.graph_networks import WithSoftmax

    wrapped = WithSoftmax(network).eval()
    sample = (torch.zeros(3, features), torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
    buf = io.BytesIO()
    with _EXPORTING, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notice
        torch.onnx.export(
            wrapped,
            sample,
            buf,  # type: ignore[arg-type]
            dynamo=False,
            input_names=[NODES, EDGES],
            output_names=[OUTPUT],
            dynamic_axes={NODES: {0: "nodes"}, EDGES: {1: "edges"}, OUTPUT: {0: "nodes"}},
            opset_version=OPSET,
            do_constant_folding=True,
        )
    onnx.checker.check_model(onnx.load_from_string(buf.getvalue()))
    return buf.getvalue()


def graph_check(
    onnx_bytes: bytes, network: Any, features: int, *, atol: float = 1e-4, seed: int = 0
) -> float:
    """Run torch and onnxruntime on the same random graphs (3 sizes, one without edges,
    repeated targets included) and return the largest absolute difference; raise
    :class:`ExportMismatch` above ``atol``."""
    import onnxruntime as ort
    import torch

    from pixelmill.ml.graph_networks import WithSoftmax

    wrapped = WithSoftmax(network).eval()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for nodes, edges in ((5, 0), (40, 200), (300, 1800)):
        x = rng.standard_normal((nodes, features)).astype(np.float32)
        e = rng.integers(0, nodes, size=(2, edges)).astype(np.int64)
        with torch.inference_mode():
            expected = wrapped(torch.from_numpy(x), torch.from_numpy(e)).numpy()
        got = session.run([OUTPUT], {NODES: x, EDGES: e})[0]
        worst = max(worst, float(np.max(np.abs(expected - got))))
    if worst > atol:
        raise ExportMismatch(f"ONNX output differs from torch by {worst:.2e} (> {atol:.0e})")
    return worst
