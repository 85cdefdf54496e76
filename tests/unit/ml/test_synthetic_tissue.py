"""The synthetic tissue generator: reproducible, classes in regions, weak own cues."""

from __future__ import annotations

import numpy as np

from pixelmill.ml.graph import build_graph
from pixelmill.ml.synthetic_tissue import TissueConfig, tissue_sample


def test_same_seed_same_tissue_and_every_cell_has_a_class() -> None:
    cfg = TissueConfig(size=(128, 128))
    a, b, c = tissue_sample(3, 0, cfg), tissue_sample(3, 0, cfg), tissue_sample(4, 0, cfg)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.image, c.image)
    assert a.labels.max() == len(a.classes) - 1 > 50
    assert set(np.unique(a.labels)) == set(range(a.labels.max() + 1))  # no gaps
    assert a.classes[0] == -1 and set(a.classes[1:].tolist()) == {0, 1}


def test_neighbours_share_their_class_far_more_often_than_chance() -> None:
    s = tissue_sample(0, 1)
    g = build_graph(s.labels, s.image)
    y = s.classes[g.labels]
    same = float((y[g.edges[0]] == y[g.edges[1]]).mean())
    share = float(y.mean())
    chance = share**2 + (1 - share) ** 2
    assert same > 0.75 and same > chance + 0.2
