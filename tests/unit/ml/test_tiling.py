"""Tile plans cover the image; blending is an exact average where tiles agree."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pixelmill.ml import tiling


@settings(deadline=None, max_examples=60)  # a shared, loaded CI box
@given(
    rows=st.integers(1, 700),
    cols=st.integers(1, 700),
    tile=st.integers(16, 256),
    frac=st.floats(0, 0.9),
)
def test_plan_covers_every_pixel_within_bounds(
    rows: int, cols: int, tile: int, frac: float
) -> None:
    overlap = int(tile * frac) // 2 * 2
    tiles = tiling.plan(rows, cols, tile, min(overlap, tile - 1))
    seen = np.zeros((rows, cols), bool)
    for t in tiles:
        assert t.row >= 0 and t.col >= 0 and t.row + t.rows <= rows and t.col + t.cols <= cols
        assert t.rows == min(tile, rows) and t.cols == min(tile, cols)
        seen[t.row : t.row + t.rows, t.col : t.col + t.cols] = True
    assert seen.all()


def test_blend_of_agreeing_tiles_is_exact() -> None:
    rows, cols = 300, 210
    truth = np.random.default_rng(0).random((2, rows, cols)).astype(np.float32)
    tiles = tiling.plan(rows, cols, 96, 32)
    outs = [truth[:, t.row : t.row + t.rows, t.col : t.col + t.cols] for t in tiles]
    assert np.allclose(tiling.blend(outs, tiles, rows, cols, 32), truth, atol=1e-6)
