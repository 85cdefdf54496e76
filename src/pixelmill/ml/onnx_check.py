"""Refuse an ONNX model before ONNX Runtime loads it if it could reach beyond its own
bytes, and at registration if it cannot run with its input spec.

Why. A tensor of an ONNX model may keep its data in an external file named by a
relative ``location``; ONNX Runtime blocks absolute paths and ``..`` but resolves the
rest against the working directory, which under ``pixelmill up`` holds the database,
the originals and ``pixelmill.yaml`` with the signing key. A model registered that way
returns the file's bytes in its predictions. So any tensor with external data
(initializers, sparse initializers, constants and other tensor attributes, in subgraphs
and model-local functions too) is refused, and sessions are given an empty private
folder for external data besides (see :func:`empty_folder`).

Nodes must use the standard domains (``""``/``ai.onnx``, ``ai.onnx.ml``) or a function
defined in the model itself. Custom domains name kernels from shared libraries we never
load. The onnxruntime contrib domain ``com.microsoft`` is refused too: its kernels are
large, less exercised native code (attention, quantisation, tokenizers) that models
exported from torch never need, and ONNX Runtime adds them itself when it optimises a
loaded graph. ``ort_config`` metadata is refused because ONNX Runtime can take session
options (file paths among them) from it when ``ORT_LOAD_CONFIG_FROM_MODEL`` is set.

Messages never name a server path. ``onnx`` is imported lazily (the gateway imports this
module without loading it).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import math
import os
import re
import tempfile
from typing import Any

import numpy as np

from pixelmill.errors import InvalidModel
from pixelmill.ml.export import INPUT, OUTPUT
from pixelmill.ml.spec import InputSpec

#: node domains a model may use (besides its own functions)
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
#: model metadata keys ONNX Runtime may turn into session options
REFUSED_METADATA = frozenset({"ort_config"})
#: problems listed in one refusal
_SHOWN = 20
_STATUS = re.compile(r"\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*([A-Z_]+)")
#: ONNX Runtime's status codes, in words for a client (its messages name source files,
#: paths and internals: they go to the log, never to the client)
_STATUS_WORDS = {
    "INVALID_ARGUMENT": "an input has the wrong shape or type",
    "INVALID_GRAPH": "the graph is invalid",
    "INVALID_PROTOBUF": "the file is not a valid ONNX model",
    "NO_MODEL": "the file is not a valid ONNX model",
    "NO_SUCHFILE": "it refers to a file",
    "NOT_IMPLEMENTED": "it uses an operator or type ONNX Runtime does not implement",
}


def clean(message: object) -> str:
    """What an ONNX Runtime failure means, for a client: its status in words, never the
    library's message (which can name files of the server and its own sources)."""
    found = _STATUS.search(str(message))
    status = found.group(1) if found else "FAIL"
    words = _STATUS_WORDS.get(status, "ONNX Runtime failed on it")
    return f"{words} (ONNX Runtime status {status})"


@functools.cache
def empty_folder() -> str:
    """A fixed, empty, private (0700) folder for a session's external data: were any
    reference left, it would resolve there and find nothing."""
    folder = tempfile.mkdtemp(prefix="pixelmill-onnx-")
    atexit.register(_remove, folder)  # nothing of the process stays behind in /tmp
    return folder


def _remove(folder: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(folder)


def _name(value: str) -> str:
    return repr(value[:80])


def unsafe_problems(data: bytes) -> list[str]:
    """What in the serialised model ``data`` could make ONNX Runtime read a file or load
    foreign code (module docs); empty when there is nothing."""
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError):
        return ["the bytes are not an ONNX model"]
    functions = {(f.domain, f.name) for f in model.functions}
    found: dict[str, None] = {}  # ordered set
    found.update(
        {
            f"metadata {_name(p.key)} is not allowed": None
            for p in model.metadata_props
            if p.key in REFUSED_METADATA
        }
    )
    stack: list[Any] = [model.graph]
    for info in model.training_info:
        stack += [info.initialization, info.algorithm]
    for function in model.functions:
        stack += [*function.node, *function.attribute_proto]
    while stack:  # a worklist, not recursion: subgraphs may nest deeply
        item = stack.pop()
        if isinstance(item, onnx.GraphProto):
            stack += [*item.initializer, *item.sparse_initializer, *item.node]
        elif isinstance(item, onnx.NodeProto):
            if item.domain not in ALLOWED_DOMAINS and (item.domain, item.op_type) not in functions:
                found[
                    f"operator {_name(item.op_type)} of the custom domain {_name(item.domain)}"
                ] = None
            stack += item.attribute
        elif isinstance(item, onnx.AttributeProto):
            stack += [item.t, item.sparse_tensor, item.g]
            stack += [*item.tensors, *item.sparse_tensors, *item.graphs]
        elif isinstance(item, onnx.SparseTensorProto):
            stack += [item.values, item.indices]
        elif isinstance(item, onnx.TensorProto) and (
            item.data_location == onnx.TensorProto.EXTERNAL or len(item.external_data)
        ):
            found[f"tensor {_name(item.name)} keeps its data in an external file"] = None
    return list(found)


def refuse_unsafe(data: bytes) -> None:
    """Raise :class:`InvalidModel` (422) if :func:`unsafe_problems` finds anything."""
    problems = unsafe_problems(data)
    if problems:
        shown = problems[:_SHOWN]
        raise InvalidModel(
            "the model is refused: "
            + "; ".join(shown)
            + (f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else "")
            + ". Models must keep all their data inside the file and use only standard "
            "ONNX operators",
            problems=shown,
        )


def _static(dim: object) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _input_problems(arg: Any, spec: InputSpec, side: int) -> list[str]:
    shape = list(arg.shape or [])
    if arg.type != "tensor(float)":
        return [f"input {INPUT!r} is {arg.type}; it must be float32 (tensor(float))"]
    if len(shape) != 4:
        return [f"input {INPUT!r} has shape {shape}; it must be (batch, channels, height, width)"]
    batch, channels, rows, cols = (_static(d) for d in shape)
    out = []
    if batch is not None:
        out.append(f"input {INPUT!r} has a fixed batch of {batch}; the batch axis must be dynamic")
    if channels is not None and channels != spec.channels:
        out.append(
            f"input {INPUT!r} takes {channels} channel(s) but the input_spec feeds "
            f"{spec.channels} (input_spec.channels)"
        )
    fixed = [d for d in (rows, cols) if d is not None]
    if spec.task == "segmentation" and fixed:
        out.append(f"input {INPUT!r} has a fixed height/width; segmentation needs them dynamic")
    elif spec.task == "classification" and any(d != side for d in fixed):
        out.append(
            f"input {INPUT!r} is {rows}x{cols} but the input_spec resizes images to "
            f"{side}x{side} (input_spec.size)"
        )
    return out


def _output_problems(arg: Any, spec: InputSpec) -> list[str]:
    shape = list(arg.shape or [])
    if arg.type != "tensor(float)":
        return [f"output {OUTPUT!r} is {arg.type}; it must be float32 (tensor(float))"]
    want = 4 if spec.task == "segmentation" else 2
    if len(shape) != want:
        layout = "(batch, 1, height, width)" if want == 4 else "(batch, classes)"
        return [f"output {OUTPUT!r} has shape {shape}; a {spec.task} model gives {layout}"]
    second = _static(shape[1])
    if spec.task == "segmentation" and second not in (None, 1):
        return [f"output {OUTPUT!r} has {second} channels; segmentation gives 1 (a probability)"]
    if spec.task == "classification" and spec.classes and second not in (None, len(spec.classes)):
        return [
            f"output {OUTPUT!r} scores {second} classes but input_spec.classes names "
            f"{len(spec.classes)}"
        ]
    return []


def signature_problems(session: Any, spec: InputSpec) -> list[str]:
    """How the session's inputs and outputs disagree with what the runtime will feed and
    read for ``spec``: one float32 input ``input`` (N, C, H, W), one float32 output
    ``output`` ((N, 1, H, W) segmentation, (N, classes) classification)."""
    if spec.task == "graph":
        from pixelmill.ml import graph_runtime

        return graph_runtime.signature_problems(session, spec)
    if spec.task == "timelapse":
        from pixelmill.ml import sequence_runtime

        return sequence_runtime.signature_problems(session, spec)
    side = spec.size or spec.tile
    inputs = {a.name: a for a in session.get_inputs()}
    outputs = {a.name: a for a in session.get_outputs()}
    problems = []
    if set(inputs) != {INPUT}:
        problems.append(
            f"the model must have exactly one input named {INPUT!r}, has {sorted(inputs)}"
        )
    if OUTPUT not in outputs:
        problems.append(f"the model has no output named {OUTPUT!r} (has {sorted(outputs)})")
    if INPUT in inputs:
        problems += _input_problems(inputs[INPUT], spec, side)
    if OUTPUT in outputs:
        problems += _output_problems(outputs[OUTPUT], spec)
    return problems


def trial_problems(session: Any, spec: InputSpec) -> list[str]:
    """Run the model once on zeros of the shape the runtime feeds for ``spec`` and check
    the output's shape: a model that registers must be able to answer."""
    if spec.task == "graph":
        from pixelmill.ml import graph_runtime

        try:
            return graph_runtime.trial(session, spec)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise _TrialFailed(f"the model fails on a 3-cell graph: {clean(exc)}") from exc
    if spec.task == "timelapse":
        from pixelmill.ml import sequence_runtime

        try:
            return sequence_runtime.trial(session, spec)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise _TrialFailed(f"the model fails on a window of frames: {clean(exc)}") from exc
    if spec.task == "classification":
        rows = cols = spec.size or spec.tile
    else:  # a small image, padded to the model's multiple as the runtime does
        rows = cols = spec.multiple * math.ceil(64 / spec.multiple)
    batch = np.zeros((1, spec.channels, rows, cols), np.float32)
    try:
        out = np.asarray(session.run([OUTPUT], {INPUT: batch})[0])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise _TrialFailed(f"the model fails on a {rows}x{cols} input: {clean(exc)}") from exc
    if spec.task == "segmentation" and out.shape != (1, 1, rows, cols):
        return [
            f"on a (1, {spec.channels}, {rows}, {cols}) input the output is {out.shape}; "
            f"expected (1, 1, {rows}, {cols})"
        ]
    classes = len(spec.classes) or None
    if spec.task == "classification" and (
        out.ndim != 2 or out.shape[0] != 1 or (classes is not None and out.shape[1] != classes)
    ):
        return [f"on one input the output is {out.shape}; expected (1, {classes or 'classes'})"]
    return []


def check_fits(session: Any, spec: InputSpec) -> None:
    """Raise :class:`InvalidModel` (422) unless the loaded model runs with ``spec``."""
    problems = signature_problems(session, spec)
    try:
        problems = problems or trial_problems(session, spec)
    except _TrialFailed as failed:
        problems, cause = [str(failed)], failed.__cause__
    else:
        cause = None
    if problems:
        raise InvalidModel(
            "the model does not fit its input_spec: " + "; ".join(problems), problems=problems
        ) from cause


class _TrialFailed(Exception):
    """The trial run raised (the library's error is the ``__cause__``)."""


def failed_run(exc: BaseException) -> InvalidModel | None:
    """An ONNX Runtime failure on one input as a client error (422), or ``None`` when
    ``exc`` is not from ONNX Runtime."""
    if not type(exc).__module__.startswith("onnxruntime"):
        return None
    return InvalidModel(f"the model cannot run on this input: {clean(exc)}")
