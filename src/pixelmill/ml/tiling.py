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


def fit(length: int, max_tile: int, overlap: int, multiple: int = 1) -> int:
    """The smallest tile side (a multiple of ``multiple``, at most ``max_tile``) that
    covers ``length`` px with the fewest tiles overlapping by ``overlap``: a 2048 px side
    with 1024 px tiles needs three, and three of 736 px waste less than three of 1024."""
    top = max(multiple, max_tile - max_tile % multiple)
    if length <= top:
        return length
    count = -(-(length - overlap) // (top - overlap))
    side = -(-(length + (count - 1) * overlap) // count)
    side = -(-side // multiple) * multiple
    return min(max(side, overlap + multiple), top)


def plan(rows: int, cols: int, tile: int | tuple[int, int], overlap: int) -> list[Tile]:
    """Tiles of at most ``tile`` (side, or (rows, cols)) covering a rows x cols image,
    overlapping by at least ``overlap`` px: the fewest that do, evenly spread, the last
    row/column aligned to the border. All tiles have the same shape."""
    tile_r, tile_c = (tile, tile) if isinstance(tile, int) else tile
    if (rows > tile_r and overlap >= tile_r) or (cols > tile_c and overlap >= tile_c):
        raise ValueError(f"overlap {overlap} must be smaller than the tile {tile}")
    return [
        Tile(r, c, min(tile_r, rows), min(tile_c, cols))
        for r in _starts(rows, tile_r, overlap)
        for c in _starts(cols, tile_c, overlap)
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
