"""Serving cell-graph models with ONNX Runtime (no torch): what a registered graph
model must look like, and its prediction on an image with its cell segmentation.

A graph model takes ``nodes`` float32 (N, F) — F = ``len(input_spec.features)``, the
per-image standardised measurements of :func:`pixelmill.ml.graph.node_inputs` — and
``edges`` int64 (2, E), and gives ``output`` float32 (N, classes), class probabilities;
N and E are dynamic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.errors import InvalidParameter
from pixelmill.ml.export import EDGES, NODES, OUTPUT
from pixelmill.ml.graph import CellGraph, build_graph, node_inputs
from pixelmill.ml.graph_measures import per_cell, summarize
from pixelmill.ml.spec import InputSpec


def signature_problems(session: Any, spec: InputSpec) -> list[str]:
    """How the session's inputs and outputs disagree with what a graph model must take
    and give (module docstring)."""
    inputs = {a.name: a for a in session.get_inputs()}
    outputs = {a.name: a for a in session.get_outputs()}
    problems = []
    if set(inputs) != {NODES, EDGES}:
        problems.append(
            f"a graph model has exactly the inputs {NODES!r} and {EDGES!r}, has {sorted(inputs)}"
        )
    if not spec.features:
        problems.append("input_spec.features names no node features")
    if NODES in inputs:
        shape = list(inputs[NODES].shape or [])
        width = shape[1] if len(shape) == 2 else None
        if inputs[NODES].type != "tensor(float)" or len(shape) != 2:
            problems.append(f"input {NODES!r} must be float32 (nodes, features)")
        elif isinstance(width, int) and width != len(spec.features):
            problems.append(
                f"input {NODES!r} takes {width} features but input_spec.features names "
                f"{len(spec.features)}"
            )
    if EDGES in inputs and inputs[EDGES].type != "tensor(int64)":
        problems.append(f"input {EDGES!r} must be int64 (2, edges)")
    if OUTPUT not in outputs:
        problems.append(f"the model has no output named {OUTPUT!r} (has {sorted(outputs)})")
    elif outputs[OUTPUT].type != "tensor(float)":
        problems.append(f"output {OUTPUT!r} must be float32 (nodes, classes)")
    return problems


def trial(session: Any, spec: InputSpec) -> list[str]:
    """Run the model on a 3-node triangle of zeros; problems with the answer's shape.
    Raises what ONNX Runtime raises."""
    nodes = np.zeros((3, len(spec.features)), np.float32)
    edges = np.array([[0, 1, 1, 2, 0, 2], [1, 0, 2, 1, 2, 0]], np.int64)
    out = np.asarray(session.run([OUTPUT], {NODES: nodes, EDGES: edges})[0])
    classes = len(spec.classes) or None
    if out.ndim != 2 or out.shape[0] != 3 or (classes is not None and out.shape[1] != classes):
        return [f"on 3 nodes the output is {out.shape}; expected (3, {classes or 'classes'})"]
    return []


def classify(session: Any, spec: InputSpec, graph: CellGraph) -> NDArray[np.float32]:
    """Class probabilities (N, classes) of a graph's cells."""
    if graph.nodes == 0:
        return np.zeros((0, len(spec.classes)), np.float32)
    feeds = {NODES: node_inputs(graph), EDGES: graph.edges}
    return np.asarray(session.run([OUTPUT], feeds)[0], np.float32)


def cell_table(
    session: Any, spec: InputSpec, labels: NDArray[np.integer], image: NDArray[np.generic]
) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
    """The per-cell table (label, centroid, class, probability per class, degree,
    clustering, mean neighbour distance, neighbourhood composition) and the image's
    summary (:func:`pixelmill.ml.graph_measures.summarize`) for an image and its
    instance labels, classes as the model predicts them."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype.kind not in "ui":
        raise InvalidParameter("the cell segmentation must be a one-channel integer label image")
    if labels.dtype.kind == "i" and labels.size and int(labels.min()) < 0:
        raise InvalidParameter(
            "the cell segmentation has negative labels: 0 is background, cells are 1, 2, ..."
        )
    if labels.shape != image.shape[:2]:
        raise InvalidParameter(
            f"the label image is {labels.shape[1]}x{labels.shape[0]} but the image is "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    graph = build_graph(labels, image, max_edge=spec.max_edge, feature_names=spec.features or None)
    probs = classify(session, spec, graph)
    names = spec.classes or [str(i) for i in range(probs.shape[1])]
    predicted = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    table = per_cell(graph, predicted, names)
    columns = list(table)
    at = columns.index("class") + 1
    for c, name in enumerate(names):
        columns.insert(at + c, f"p_{name}")
        table[f"p_{name}"] = probs[:, c].astype(np.float64)
    return {k: table[k] for k in columns}, summarize(graph, predicted, names)


def rows(table: dict[str, NDArray[Any]]) -> list[dict[str, Any]]:
    """A column table as JSON-ready rows (NaN → null, floats rounded to 6 places)."""
    out: list[dict[str, Any]] = []
    columns = list(table)
    n = len(table[columns[0]]) if columns else 0
    for i in range(n):
        row: dict[str, Any] = {}
        for k in columns:
            v = table[k][i]
            if isinstance(v, (float, np.floating)):
                row[k] = None if np.isnan(v) else round(float(v), 6)
            elif isinstance(v, (np.integer, int)):
                row[k] = int(v)
            else:
                row[k] = v
        out.append(row)
    return out
