"""Graph measurements per cell, per image and per study."""

from __future__ import annotations

import numpy as np

from pixelmill.ml import graph_measures
from pixelmill.ml.graph import build_graph


def _triangle_and_tail() -> np.ndarray:
    """Cells 1, 2, 3 in a triangle; cell 4 hangs off cell 3 (12 px steps)."""
    lab = np.zeros((40, 60), np.int32)
    lab[4:8, 4:8], lab[4:8, 16:20], lab[14:18, 10:14], lab[26:30, 10:14] = 1, 2, 3, 4
    return lab


def test_degree_clustering_and_neighbourhood_composition() -> None:
    g = build_graph(_triangle_and_tail(), max_edge_px=13)
    classes = np.array([0, 0, 1, 1])  # 1, 2 stroma; 3, 4 tumour
    t = graph_measures.per_cell(g, classes, ["stroma", "tumour"])
    assert t["degree"].tolist() == [2, 2, 3, 1]
    # 1 and 2: their two neighbours are joined; 3: one of its three pairs; 4: too few
    assert np.allclose(t["clustering"], [1.0, 1.0, 1 / 3, 0.0])
    assert np.allclose(t["neighbours_tumour"], [0.5, 0.5, 1 / 3, 1.0])
    assert np.allclose(t["neighbours_stroma"] + t["neighbours_tumour"], 1.0)
    assert t["class"].tolist() == ["stroma", "stroma", "tumour", "tumour"]
    assert np.isclose(t["mean_neighbour_distance_px"][3], 12.0)


def test_a_lone_cell_has_no_neighbourhood() -> None:
    lab = np.zeros((20, 20), np.int32)
    lab[5:9, 5:9] = 1
    t = graph_measures.per_cell(build_graph(lab), np.array([1]), ["a", "b"])
    assert t["degree"].tolist() == [0] and np.isnan(t["neighbours_a"][0])


def test_image_and_study_summaries() -> None:
    g = build_graph(_triangle_and_tail(), max_edge_px=13)
    names = ["stroma", "tumour"]
    one = graph_measures.summarize(g, np.array([0, 0, 1, 1]), names)
    assert one["cells"] == 4 and one["edges"] == 4
    assert one["class_counts"] == {"stroma": 2, "tumour": 2}
    assert one["same_class_edges"] == 0.5  # 1-2 and 3-4 of four edges
    assert np.isclose(one["mean_neighbours"]["tumour"]["stroma"], (2 / 3 + 0) / 2)
    other = graph_measures.summarize(g, np.array([1, 1, 1, 1]), names)
    both = graph_measures.combine([one, other])
    assert both["images"] == 2 and both["cells"] == 8
    assert both["class_counts"] == {"stroma": 2, "tumour": 6}
    assert both["same_class_edges"] == 0.75
    assert np.isclose(both["mean_degree"], 2.0)


def test_an_image_without_cells_summarises_to_zero_counts() -> None:
    g = build_graph(np.zeros((20, 20), np.int32), np.zeros((20, 20), np.uint8))
    assert g.nodes == 0 and g.edges.shape == (2, 0)
    one = graph_measures.summarize(g, np.zeros(0, np.int64), ["a", "b"])
    assert one["cells"] == 0 and one["class_counts"] == {"a": 0, "b": 0}
    assert np.isnan(one["mean_degree"])
    assert graph_measures.combine([one, one])["cells"] == 0


def test_unclassified_cells_are_named_empty_and_count_in_no_class() -> None:
    g = build_graph(_triangle_and_tail(), max_edge_px=13)
    t = graph_measures.per_cell(g, np.array([0, -1, 1, 1]), ["stroma", "tumour"])
    assert t["class"].tolist() == ["stroma", "", "tumour", "tumour"]
    assert np.allclose(t["neighbours_stroma"] + t["neighbours_tumour"], [0.5, 1.0, 2 / 3, 1.0])
