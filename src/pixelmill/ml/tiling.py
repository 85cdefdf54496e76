"""Tiled inference geometry: cut a large (C, H, W) array into overlapping tiles and
blend per-tile outputs back with weights that fade out towards interior tile edges
(so seams are invisible and every pixel mostly comes from a tile where it had context).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Tile:
    row: int
    col: int
    rows: int
    cols: int


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    # the fewest tiles that overlap by at least ``overlap``, spread evenly: the first
    # starts at 0, the last ends at the border, no padding and no sliver tiles
    count = -(-(length - overlap) // (tile - overlap))
    count = max(count, 2)
    return sorted({round(i * (length - tile) / (count - 1)) for i in range(count)})


def plan(rows: int, cols: int, tile: int, overlap: int) -> list[Tile]:
    """Tiles of at most ``tile`` x ``tile`` covering a rows x cols image, overlapping by
    at least ``overlap`` px: the fewest that do, evenly spread, the last row/column
    aligned to the border."""
    if overlap >= tile:
        raise ValueError(f"overlap {overlap} must be smaller than the tile {tile}")
    return [
        Tile(r, c, min(tile, rows), min(tile, cols))
        for r in _starts(rows, tile, overlap)
        for c in _starts(cols, tile, overlap)
    ]


def _ramp(length: int, fade: int, start_edge: bool, end_edge: bool) -> NDArray[np.float32]:
    w = np.ones(length, np.float32)
    fade = min(fade, length // 2)
    if fade > 0:
        ramp = (np.arange(fade, dtype=np.float32) + 0.5) / fade
        if not start_edge:
            w[:fade] = ramp
        if not end_edge:
            w[length - fade :] = ramp[::-1]
    return w


def weights(t: Tile, rows: int, cols: int, overlap: int) -> NDArray[np.float32]:
    """(t.rows, t.cols) blending weights: linear fade over ``overlap/2`` px at edges that
    are interior to the image, flat 1 at edges on the image border."""
    fade = overlap // 2
    wr = _ramp(t.rows, fade, t.row == 0, t.row + t.rows >= rows)
    wc = _ramp(t.cols, fade, t.col == 0, t.col + t.cols >= cols)
    return np.outer(wr, wc)


def blend(
    outputs: list[NDArray[np.float32]], tiles: list[Tile], rows: int, cols: int, overlap: int
) -> NDArray[np.float32]:
    """Weighted average of per-tile outputs (each (K, t.rows, t.cols)) into (K, rows, cols)."""
    k = outputs[0].shape[0]
    acc = np.zeros((k, rows, cols), np.float32)
    norm = np.zeros((rows, cols), np.float32)
    for out, t in zip(outputs, tiles, strict=True):
        w = weights(t, rows, cols, overlap)
        acc[:, t.row : t.row + t.rows, t.col : t.col + t.cols] += out * w
        norm[t.row : t.row + t.rows, t.col : t.col + t.cols] += w
    return np.asarray(acc / np.maximum(norm, 1e-8), dtype=np.float32)
