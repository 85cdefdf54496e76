"""Training the cell-graph network, and its ONNX export checked against torch."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from pixelmill.ml import export
from pixelmill.ml.graph import build_graph, node_inputs
from pixelmill.ml.graph_training import (
    GraphExample,
    GraphFitOptions,
    evaluate,
    fit,
    predict,
)
from pixelmill.ml.synthetic_tissue import TissueConfig, tissue_sample


def _examples(seed: int, count: int) -> list[GraphExample]:
    out = []
    for i in range(count):
        s = tissue_sample(seed, i, TissueConfig(size=(128, 128)))
        g = build_graph(s.labels, s.image)
        out.append(GraphExample(g, s.classes[g.labels]))
    return out


@pytest.fixture(scope="module")
def trained() -> tuple[object, list[GraphExample]]:
    train, test = _examples(0, 7), _examples(1, 3)
    result = fit(train[:5], train[5:], GraphFitOptions(classes=2, epochs=20, width=16))
    return result, test


def test_the_graph_network_learns_tissue_classes(trained: tuple) -> None:
    result, test = trained
    scores = evaluate(result.network, test, 2)
    assert scores["accuracy"] > 0.75 and scores["f1"] > 0.7
    assert result.history and result.best_epoch >= 1
    assert {"accuracy", "f1", "val_loss"} <= set(result.metrics)
    # weights stay far below the 10 MB budget
    assert len(result.checkpoint) < 100_000


def test_unannotated_cells_are_nodes_without_a_loss() -> None:
    ex = _examples(0, 2)
    hidden = [
        GraphExample(e.graph, np.where(np.arange(e.graph.nodes) % 2, e.targets, -1)) for e in ex
    ]
    result = fit(hidden, [], GraphFitOptions(classes=2, epochs=2, width=8))
    # no validation graphs: the training loss, never labelled as a validation loss
    assert "val_loss" not in result.metrics and result.metrics["loss"] > 0
    none = [GraphExample(e.graph, np.full(e.graph.nodes, -1)) for e in ex]
    with pytest.raises(Exception, match="no annotated cells"):
        fit(none, [], GraphFitOptions(classes=2, epochs=1))


def test_onnx_export_matches_torch_on_graphs_of_any_size(trained: tuple) -> None:
    import onnxruntime as ort

    result, test = trained
    features = len(test[0].graph.feature_names)
    data = export.graph_to_onnx(result.network, features)
    assert export.graph_check(data, result.network, features) < 1e-5
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    g = test[0].graph
    got = session.run(["output"], {"nodes": node_inputs(g), "edges": g.edges})[0]
    assert got.shape == (g.nodes, 2)
    assert np.abs(got - predict(result.network, g)).max() < 1e-5
    assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_a_mismatching_export_is_refused(trained: tuple) -> None:
    from pixelmill.ml.graph_networks import CellGraphNet

    result, test = trained
    features = len(test[0].graph.feature_names)
    data = export.graph_to_onnx(result.network, features)
    other = CellGraphNet(features, 2, width=16).eval()
    with pytest.raises(export.ExportMismatch):
        export.graph_check(data, other, features)


def test_isolated_cells_still_get_a_class() -> None:
    lab = np.zeros((60, 60), np.int32)
    lab[5:10, 5:10], lab[40:46, 40:46] = 1, 2
    g = build_graph(lab, lab.astype(np.uint8) * 50)
    assert g.edges.shape[1] == 0
    result = fit(_examples(0, 1), [], GraphFitOptions(classes=2, epochs=1, width=8))
    p = predict(
        result.network,
        build_graph(
            lab, lab.astype(np.uint8) * 50, feature_names=_examples(0, 1)[0].graph.feature_names
        ),
    )
    assert p.shape == (2, 2)
