"""Graph measurements of a :class:`~pixelmill.ml.graph.CellGraph`: per cell, per image,
per study. Pure numpy/scipy.

Per cell: ``degree`` (neighbours), ``clustering`` (local clustering coefficient: the
share of pairs of neighbours that are neighbours themselves; 0 below two neighbours),
``mean_neighbour_distance_px`` (NaN without neighbours) and the **neighbourhood
composition** ``neighbours_<class>`` (the share of neighbours of each class; NaN without
neighbours). Per image (:func:`summarize`) and per study (:func:`combine`): counts, class
counts and shares, mean degree and clustering, and ``same_class_edges`` (the share of
edges joining two cells of one class: 1 = classes in separate regions, about the sum of
squared class shares = well mixed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.ml.graph import CellGraph


def clustering(graph: CellGraph) -> NDArray[np.float64]:
    """Local clustering coefficient per node, (N,) float64."""
    from scipy import sparse

    n = graph.nodes
    adj = sparse.csr_matrix(
        (np.ones(graph.edges.shape[1]), (graph.edges[0], graph.edges[1])), shape=(n, n)
    )
    degree = np.asarray(adj.sum(axis=1)).ravel()
    triangles = np.asarray((adj @ adj).multiply(adj).sum(axis=1)).ravel() / 2
    pairs = degree * (degree - 1) / 2
    return np.divide(triangles, pairs, out=np.zeros(n), where=pairs > 0)


def per_cell(
    graph: CellGraph, classes: NDArray[np.integer], class_names: Sequence[str]
) -> dict[str, NDArray[Any]]:
    """One column per measurement, one row per node (the graph's order).

    ``classes`` (N,) are class indices into ``class_names`` (a model's predictions, or
    the truth; -1, a cell without a class, is named "" and counts in no composition). Columns: ``label``, ``centroid_row``, ``centroid_col``, ``class``,
    ``degree``, ``clustering``, ``mean_neighbour_distance_px``, ``neighbours_<name>``.

    >>> from pixelmill.ml.graph import build_graph
    >>> lab = np.zeros((20, 40), np.int32)
    >>> lab[5:9, 5:9], lab[5:9, 15:19], lab[12:16, 10:14] = 1, 2, 3
    >>> t = per_cell(build_graph(lab), np.array([0, 0, 1]), ["a", "b"])
    >>> t["degree"].tolist(), t["neighbours_b"].tolist()
    ([2, 2, 2], [0.5, 0.5, 0.0])
    """
    n = graph.nodes
    src, dst = graph.edges
    degree = np.bincount(src, minlength=n)
    has = degree > 0
    dist_sum = np.bincount(src, weights=graph.distances, minlength=n)
    classes = np.asarray(classes, np.int64)
    table: dict[str, NDArray[Any]] = {
        "label": graph.labels,
        "centroid_row": graph.centroids[:, 0],
        "centroid_col": graph.centroids[:, 1],
        "class": np.array([class_names[c] if c >= 0 else "" for c in classes], dtype=object),
        "degree": degree.astype(np.int64),
        "clustering": clustering(graph),
        "mean_neighbour_distance_px": np.divide(
            dist_sum, degree, out=np.full(n, np.nan), where=has
        ),
    }
    for c, name in enumerate(class_names):
        count = np.bincount(src, weights=(classes[dst] == c).astype(np.float64), minlength=n)
        table[f"neighbours_{name}"] = np.divide(count, degree, out=np.full(n, np.nan), where=has)
    return table


def summarize(
    graph: CellGraph, classes: NDArray[np.integer], class_names: Sequence[str]
) -> dict[str, Any]:
    """Per-image summary: ``cells``, ``edges`` (undirected), ``mean_degree``,
    ``mean_clustering``, ``class_counts``, ``class_fractions``, ``same_class_edges``
    (NaN without edges) and ``mean_neighbours`` (per class: the mean neighbourhood
    composition of the cells of that class, e.g. how much stroma surrounds tumour)."""
    classes = np.asarray(classes, np.int64)
    cells = per_cell(graph, classes, class_names)
    src, dst = graph.edges
    counts = np.bincount(classes, minlength=len(class_names)) if len(classes) else None
    mean_neighbours: dict[str, dict[str, float]] = {}
    for c, name in enumerate(class_names):
        of_class = (classes == c) & (cells["degree"] > 0)
        mean_neighbours[name] = {
            other: _mean(cells[f"neighbours_{other}"][of_class]) for other in class_names
        }
    return {
        "cells": graph.nodes,
        "edges": int(graph.edges.shape[1] // 2),
        "mean_degree": _mean(cells["degree"]),
        "mean_clustering": _mean(cells["clustering"]),
        "class_counts": {
            n: int(counts[c]) if counts is not None else 0 for c, n in enumerate(class_names)
        },
        "class_fractions": {
            n: float(counts[c] / graph.nodes) if counts is not None else float("nan")
            for c, n in enumerate(class_names)
        },
        "same_class_edges": _mean((classes[src] == classes[dst]).astype(np.float64)),
        "mean_neighbours": mean_neighbours,
    }


def combine(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A study's summary from its images' :func:`summarize` results: counts summed,
    means weighted by cells (degree, clustering, neighbourhoods) or edges."""
    cells = sum(s["cells"] for s in summaries)
    edges = sum(s["edges"] for s in summaries)
    names = list(summaries[0]["class_counts"]) if summaries else []
    counts = {n: sum(s["class_counts"][n] for s in summaries) for n in names}

    def weighted(key: str, weight: str) -> float:
        pairs = [(s[key], s[weight]) for s in summaries if s[weight] and not np.isnan(s[key])]
        total = sum(w for _, w in pairs)
        return float(sum(v * w for v, w in pairs) / total) if total else float("nan")

    neighbours = {
        c: {
            o: weighted_of([(s["mean_neighbours"][c][o], s["class_counts"][c]) for s in summaries])
            for o in names
        }
        for c in names
    }
    return {
        "images": len(summaries),
        "cells": cells,
        "edges": edges,
        "mean_degree": weighted("mean_degree", "cells"),
        "mean_clustering": weighted("mean_clustering", "cells"),
        "class_counts": counts,
        "class_fractions": {n: counts[n] / cells if cells else float("nan") for n in names},
        "same_class_edges": weighted("same_class_edges", "edges"),
        "mean_neighbours": neighbours,
    }


def weighted_of(pairs: Sequence[tuple[float, float]]) -> float:
    """Mean of values weighted by their weights, skipping NaN values; NaN if none."""
    kept = [(v, w) for v, w in pairs if w and not np.isnan(v)]
    total = sum(w for _, w in kept)
    return float(sum(v * w for v, w in kept) / total) if total else float("nan")


def _mean(values: NDArray[Any]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")
