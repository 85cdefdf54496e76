"""Tile plans cover the image; blending is an exact average where tiles agree."""

from __future__ import annotations

import itertools

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


@settings(deadline=None, max_examples=80)
@given(
    length=st.integers(1, 5000),
    max_tile=st.integers(64, 1100),
    multiple=st.sampled_from([1, 4, 16]),
)
def test_fit_tiles_cover_with_the_overlap_and_waste_little(
    length: int, max_tile: int, multiple: int
) -> None:
    overlap = 32
    side = tiling.fit(length, max_tile, overlap, multiple)
    assert side <= max(max_tile, length if length <= max_tile else 0) or side == length
    tiles = tiling.plan(length, 7, (side, 7), overlap)
    starts = [t.row for t in tiles]
    assert (starts[0] == 0 and starts[-1] + side == max(length, side)) or len(tiles) == 1
    assert all(b - a <= side - overlap for a, b in itertools.pairwise(starts))
    # never more tiles than the plain max_tile plan
    assert len(tiles) <= len(
        tiling.plan(length, 7, (max(max_tile - max_tile % multiple, multiple), 7), overlap)
    )
