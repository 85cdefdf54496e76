"""Cell graphs from label images: nodes, Delaunay edges, node inputs."""

from __future__ import annotations

import numpy as np
import pytest

from pixelmill.errors import InvalidParameter
from pixelmill.ml.graph import build_graph, delaunay_edges, join, node_inputs


def _grid_labels(rows: int, cols: int, step: int = 10, side: int = 4) -> np.ndarray:
    """A rows x cols grid of square objects ``step`` px apart, labelled row by row."""
    lab = np.zeros((rows * step + step, cols * step + step), np.int32)
    for i in range(rows):
        for j in range(cols):
            r, c = step // 2 + i * step, step // 2 + j * step
            lab[r : r + side, c : c + side] = i * cols + j + 1
    return lab


def test_a_grid_of_cells_becomes_a_graph_of_neighbours() -> None:
    # given a 3 x 4 grid of equal cells 10 px apart
    lab = _grid_labels(3, 4)
    # when its graph is built with edges up to 11 px (no diagonals)
    g = build_graph(lab, lab.astype(np.uint8) * 10, max_edge_px=11)
    # then every cell is a node and joins exactly its 4-neighbours
    assert g.nodes == 12 and list(g.labels) == list(range(1, 13))
    degree = np.bincount(g.edges[0], minlength=12).reshape(3, 4)
    assert degree.tolist() == [[2, 3, 3, 2], [3, 4, 4, 3], [2, 3, 3, 2]]
    assert np.allclose(g.distances, 10.0)
    # edges come in both directions
    pairs = set(map(tuple, g.edges.T.tolist()))
    assert all((b, a) in pairs for a, b in pairs)
    assert sorted(g.neighbours(5).tolist()) == [1, 4, 6, 9]


def test_the_default_longest_edge_follows_the_cell_size() -> None:
    # two cells close together and one far away
    lab = np.zeros((40, 200), np.int32)
    lab[10:16, 10:16], lab[10:16, 24:30], lab[30:36, 12:18] = 1, 2, 3
    lab[10:16, 180:186] = 4
    g = build_graph(lab)
    # median equivalent diameter ~6.8 px -> edges up to ~20 px: cell 4 stays alone
    assert 18 < g.max_edge_px < 22
    assert g.neighbours(3).size == 0
    assert set(g.neighbours(0).tolist()) == {1, 2}


def test_features_are_the_measurements_and_node_inputs_are_standardised() -> None:
    lab = _grid_labels(3, 3)
    image = np.zeros(lab.shape, np.uint16)
    image[lab > 0] = 1000 + 500 * lab[lab > 0]  # brighter with label
    g = build_graph(lab, image)
    assert "area_px" in g.feature_names and "mean_intensity" in g.feature_names
    mean = g.features[:, g.feature_names.index("mean_intensity")]
    assert mean.tolist() == [1000 + 500 * k for k in range(1, 10)]
    x = node_inputs(g)
    assert x.dtype == np.float32 and x.shape == (9, len(g.feature_names))
    j = g.feature_names.index("mean_intensity")
    assert abs(float(np.median(x[:, j]))) < 1e-6 and np.all(np.diff(x[:, j]) > 0)
    # the same scene 16x dimmer (another exposure) gives the same node inputs
    dim = build_graph(lab, image // 16)
    assert np.allclose(node_inputs(dim)[:, j], x[:, j], atol=0.05)


def test_a_model_trained_on_other_channels_is_told_so() -> None:
    lab = _grid_labels(2, 2)
    with pytest.raises(InvalidParameter, match="mean_intensity_red"):
        build_graph(lab, lab.astype(np.uint8), feature_names=["area_px", "mean_intensity_red"])


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_tiny_and_collinear_point_sets_still_get_edges(count: int) -> None:
    points = np.array([[0.0, 0.0], [0.0, 5.0], [0.0, 10.0]])[:count]
    edges = delaunay_edges(points, 6.0)
    assert edges.shape[0] == 2
    assert edges.shape[1] == {0: 0, 1: 0, 2: 2, 3: 4}[count]
    line = np.stack([np.zeros(6), np.arange(6) * 5.0], axis=1)  # collinear: no triangles
    assert delaunay_edges(line, 6.0).shape[1] == 10


def test_joined_graphs_keep_their_edges_apart() -> None:
    a, b = build_graph(_grid_labels(2, 2)), build_graph(_grid_labels(1, 3))
    x, e = join([a, b])
    assert x.shape[0] == a.nodes + b.nodes == 7
    assert e.shape[1] == a.edges.shape[1] + b.edges.shape[1]
    assert e[:, a.edges.shape[1] :].min() >= a.nodes
