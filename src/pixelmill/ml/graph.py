"""Cell graphs from segmented nuclei: nodes, edges and the network's node inputs.

Pure numpy/scipy (no I/O, no torch). A label image (0 = background, one value per
object) and its intensity image become a :class:`CellGraph`:

* **nodes** are the objects, in label order, with the per-object measurements of
  :func:`pixelmill.imaging.analysis.measure_objects` (shape and intensity) as features;
* **edges** join neighbours of the Delaunay triangulation of the centroids
  (``scipy.spatial.Delaunay``) that are at most ``max_edge`` apart — by default
  ``3 x`` the image's median equivalent diameter, so cells across an empty region stay
  unconnected. Edges are stored in both directions (``[2, E]``, int64, sorted), with
  their length in pixels as the edge feature.

:func:`node_inputs` turns the features into what a graph network sees: sizes and
intensities on a log scale, then standardised per image (median and spread of that
image), so 8- and 16-bit images and different exposures look alike — the same idea as
the percentile normalisation of the image models. Graph measurements per cell and per
image are in :mod:`pixelmill.ml.graph_measures`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pixelmill.errors import InvalidParameter

#: shape measurements used as node features (columns of ``measure_objects``)
SHAPE_FEATURES = (
    "area_px",
    "perimeter_px",
    "major_axis_px",
    "minor_axis_px",
    "eccentricity",
    "solidity",
)
#: per-channel intensity measurements used as node features (prefixes)
INTENSITY_FEATURES = ("mean_intensity", "max_intensity")
#: features put on a log scale before standardising (sizes and intensities)
_LOG = ("area_px", "perimeter_px", "major_axis_px", "minor_axis_px", *INTENSITY_FEATURES)
#: default longest edge, in median equivalent diameters of the image's objects
DEFAULT_MAX_EDGE = 3.0


@dataclass(frozen=True)
class CellGraph:
    """A cell graph. ``N`` objects, ``E`` directed edges (each neighbour pair twice).

    Attributes
    ----------
    labels : (N,) int64
        The object's value in the label image.
    centroids : (N, 2) float64
        (row, col) in pixels.
    features : (N, F) float64
        Raw measurements, columns named by ``feature_names``.
    edges : (2, E) int64
        Source and target node indices, sorted by source then target.
    distances : (E,) float64
        Edge length in pixels (centroid to centroid).
    """

    labels: NDArray[np.int64]
    centroids: NDArray[np.float64]
    features: NDArray[np.float64]
    feature_names: tuple[str, ...]
    edges: NDArray[np.int64]
    distances: NDArray[np.float64]
    max_edge_px: float

    @property
    def nodes(self) -> int:
        return len(self.labels)

    def neighbours(self, node: int) -> NDArray[np.int64]:
        """The node indices joined to ``node``."""
        return self.edges[1][self.edges[0] == node]


def build_graph(
    labels: NDArray[np.integer],
    intensity: NDArray[np.generic] | None = None,
    *,
    max_edge: float = DEFAULT_MAX_EDGE,
    max_edge_px: float | None = None,
    feature_names: Sequence[str] | None = None,
) -> CellGraph:
    """The cell graph of an instance label image.

    Parameters
    ----------
    labels : (H, W) integer array
        0 = background, each object its own value.
    intensity : (H, W) or (H, W, C) array, optional
        The image the objects were segmented from (any dtype); without it there are
        no intensity features.
    max_edge : float
        Longest edge in median equivalent diameters (ignored with ``max_edge_px``).
    max_edge_px : float, optional
        Longest edge in pixels.
    feature_names : sequence of str, optional
        The measurement columns to use, in order (a trained model's own list); by
        default :data:`SHAPE_FEATURES` then every channel's :data:`INTENSITY_FEATURES`.

    Examples
    --------
    >>> lab = np.zeros((20, 40), np.int32)
    >>> lab[5:9, 5:9], lab[5:9, 15:19], lab[12:16, 10:14] = 1, 2, 3
    >>> g = build_graph(lab)
    >>> g.nodes, g.edges.shape[1]
    (3, 6)
    """
    from pixelmill.imaging.analysis import measure_objects

    table = measure_objects(np.asarray(labels), intensity)
    names = tuple(feature_names) if feature_names else default_features(table.column_names)
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise InvalidParameter(
            f"the image has no measurement {', '.join(missing)} "
            f"(a model trained on other channels?)"
        )
    ids = np.asarray(table.column("label").to_numpy(), np.int64)
    centroids = np.stack(
        [table.column("centroid_row").to_numpy(), table.column("centroid_col").to_numpy()],
        axis=1,
    ).astype(np.float64)
    features = np.stack(
        [np.asarray(table.column(n).to_numpy(), np.float64) for n in names], axis=1
    ).reshape(len(ids), len(names))
    if max_edge_px is None:
        diam = table.column("equivalent_diameter_px").to_numpy()
        max_edge_px = float(max_edge * np.median(diam)) if len(diam) else 0.0
    edges = delaunay_edges(centroids, max_edge_px)
    distances = np.linalg.norm(centroids[edges[0]] - centroids[edges[1]], axis=1)
    return CellGraph(ids, centroids, features, names, edges, distances, float(max_edge_px))


def default_features(columns: Sequence[str]) -> tuple[str, ...]:
    """:data:`SHAPE_FEATURES`, then the intensity columns present, channel by channel."""
    intensity = [c for c in columns if c.startswith(INTENSITY_FEATURES)]
    return (*SHAPE_FEATURES, *intensity)


def delaunay_edges(points: NDArray[np.float64], max_length: float) -> NDArray[np.int64]:
    """Both directions of every Delaunay edge of ``points`` (N, 2) no longer than
    ``max_length``; (2, E) int64 sorted by source, then target. Fewer than four points,
    or points on one line, fall back to every pair within ``max_length``."""
    from scipy.spatial import Delaunay, QhullError, cKDTree

    n = len(points)
    pairs: NDArray[np.int64]
    try:
        if n < 4:
            raise ValueError("too few points for a triangulation")
        simplices = Delaunay(points).simplices
        pairs = np.concatenate([simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [0, 2]]])
    except (QhullError, ValueError):
        pairs = np.asarray(sorted(cKDTree(points).query_pairs(max_length)), np.int64).reshape(-1, 2)
    pairs = np.sort(pairs, axis=1)
    pairs = np.unique(pairs, axis=0)
    if len(pairs):
        length = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1)
        pairs = pairs[length <= max_length]
    both = np.concatenate([pairs, pairs[:, ::-1]]).astype(np.int64)
    order = np.lexsort((both[:, 1], both[:, 0]))
    return np.ascontiguousarray(both[order].T).reshape(2, -1)


def node_inputs(graph: CellGraph) -> NDArray[np.float32]:
    """The network's node features, (N, F) float32: sizes and intensities as
    ``log1p``, then each column standardised by the image's median and its spread
    (interquartile range / 1.349, at least 1e-3), clipped to ±6."""
    x = graph.features.copy()
    for j, name in enumerate(graph.feature_names):
        if name.startswith(_LOG):
            x[:, j] = np.log1p(np.clip(x[:, j], 0, None))
    if len(x) == 0:
        return x.astype(np.float32)
    centre = np.median(x, axis=0)
    q75, q25 = np.percentile(x, [75, 25], axis=0)
    spread = np.maximum((q75 - q25) / 1.349, 1e-3)
    return np.clip((x - centre) / spread, -6, 6).astype(np.float32)


def join(graphs: Sequence[CellGraph]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Several graphs as one disconnected graph: stacked node inputs (each standardised
    within its own image) and edges with node indices shifted; for batched training."""
    xs, es, offset = [], [], 0
    for g in graphs:
        xs.append(node_inputs(g))
        es.append(g.edges + offset)
        offset += g.nodes
    width = len(graphs[0].feature_names) if graphs else 0
    x = np.concatenate(xs) if xs else np.zeros((0, width), np.float32)
    e = np.concatenate(es, axis=1) if es else np.zeros((2, 0), np.int64)
    return x, e
