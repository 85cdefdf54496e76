"""Tiled segmentation and measurement of images too large for memory (whole slides).

The image is cut into *cores* (a grid of ``tile`` x ``tile`` pixels) and each core is
segmented inside a *window*: the core grown by ``overlap`` pixels on every side (clipped
to the image). Seam-free stitching follows from three rules:

* an object is *valid* in a window when its box is at most ``overlap - halo`` pixels
  tall and wide and stays ``halo`` pixels away from the window's inner edges (edges that
  are not the image's), where ``halo`` is how far the segmenter looks around a pixel
  (smoothing, opening, watershed). A valid object is therefore segmented identically in
  every window that sees it, and identically to a whole-image run;
* an object belongs to the tile whose core holds its first pixel (raster order); only
  that tile measures it, so each object is measured exactly once;
* an object's global label is given the first time any tile sees it, keyed by the
  global position of its first pixel, so labels agree across seams.

Objects larger than ``overlap - halo`` are dropped (choose the overlap from the largest
expected object). Memory is bounded by the windows in flight plus the label keys of
about two rows of tiles; pixels come from a caller-supplied ``read(r0, c0, r1, c1)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelmill.errors import InvalidParameter

if TYPE_CHECKING:
    import pyarrow as pa

Box = tuple[int, int, int, int]
Reader = Callable[[int, int, int, int], np.ndarray]
Segmenter = Callable[[np.ndarray], np.ndarray]
#: (window labels of the owned objects, window pixels, tile) -> (objects table, extra)
Measurer = Callable[[np.ndarray, np.ndarray, "Tile"], "tuple[pa.Table, Any]"]


@dataclass(frozen=True)
class Tile:
    """One tile: grid position, core and window boxes ``(r0, c0, r1, c1)``, end-exclusive."""

    row: int
    col: int
    core: Box
    window: Box


def tile_grid(height: int, width: int, *, tile: int, overlap: int) -> list[Tile]:
    """The tiles covering a ``height`` x ``width`` image, row by row.

    Cores partition the image exactly; windows are cores grown by ``overlap`` and clipped.
    An image smaller than one tile is a single tile.

    Examples
    --------
    >>> [t.core for t in tile_grid(3, 5, tile=4, overlap=1)]
    [(0, 0, 3, 4), (0, 4, 3, 5)]
    """
    if height < 1 or width < 1:
        raise InvalidParameter("the image is empty")
    if tile < 16 or overlap < 0:
        raise InvalidParameter("tile must be >= 16 pixels and overlap >= 0")
    tiles = []
    for i, r0 in enumerate(range(0, height, tile)):
        for j, c0 in enumerate(range(0, width, tile)):
            r1, c1 = min(r0 + tile, height), min(c0 + tile, width)
            window = (
                max(0, r0 - overlap),
                max(0, c0 - overlap),
                min(height, r1 + overlap),
                min(width, c1 + overlap),
            )
            tiles.append(Tile(i, j, (r0, c0, r1, c1), window))
    return tiles


@dataclass
class TileResult:
    """A processed tile: its core's labels with global ids (uint32), and the objects it
    owns (global ids and coordinates), or None when no measurer was given."""

    tile: Tile
    labels: np.ndarray
    objects: pa.Table | None
    extra: Any = None


@dataclass
class _Local:
    tile: Tile
    labels: np.ndarray
    keys: np.ndarray  # global flat index of each valid object's first pixel
    local_ids: np.ndarray  # their labels in the window
    objects: pa.Table | None
    extra: Any = None


def _analyse_window(
    tile: Tile,
    read: Reader,
    segment: Segmenter,
    measure: Measurer | None,
    shape: tuple[int, int],
    overlap: int,
    halo: int,
) -> _Local:
    from scipy import ndimage

    wr0, wc0, wr1, wc1 = tile.window
    pixels = read(wr0, wc0, wr1, wc1)
    labels = np.asarray(segment(pixels))
    if labels.shape != (wr1 - wr0, wc1 - wc0):
        raise InvalidParameter("the segmenter must return labels of the window's size")
    labels = labels.astype(np.int64, copy=False) if labels.dtype.kind == "i" else labels
    flat = labels.ravel()
    top = int(flat.max()) if flat.size else 0
    if top == 0:
        extra = measure(labels, pixels, tile)[1] if measure is not None else None
        return _Local(tile, labels, np.zeros(0, np.int64), np.zeros(0, np.int64), None, extra)
    boxes = ndimage.find_objects(labels)
    present = np.array([i + 1 for i, b in enumerate(boxes) if b is not None], np.int64)
    bb = np.array([(b[0].start, b[1].start, b[0].stop, b[1].stop) for b in boxes if b is not None])
    h, w = labels.shape
    extent = overlap - halo
    valid = np.ones(len(present), bool)
    # the size limit only matters across inner edges: a window spanning the image's
    # full height (width) sees every object whole in that direction
    if wr0 > 0 or wr1 < shape[0]:
        valid &= bb[:, 2] - bb[:, 0] <= extent
    if wc0 > 0 or wc1 < shape[1]:
        valid &= bb[:, 3] - bb[:, 1] <= extent
    # inner window edges (not the image's own edges) must be at least `halo` away
    if wr0 > 0:
        valid &= bb[:, 0] >= halo
    if wc0 > 0:
        valid &= bb[:, 1] >= halo
    if wr1 < shape[0]:
        valid &= bb[:, 2] <= h - halo
    if wc1 < shape[1]:
        valid &= bb[:, 3] <= w - halo
    ids = present[valid]
    fg = np.flatnonzero(flat)
    first = np.full(top + 1, flat.size, np.int64)
    np.minimum.at(first, flat[fg], fg)
    fr, fc = np.divmod(first[ids], w)
    keys = (fr + wr0) * shape[1] + (fc + wc0)
    objects, extra = None, None
    if measure is not None:
        cr0, cc0, cr1, cc1 = tile.core
        grow, gcol = fr + wr0, fc + wc0
        owned = ids[(grow >= cr0) & (grow < cr1) & (gcol >= cc0) & (gcol < cc1)]
        keep = np.zeros(top + 1, bool)
        keep[owned] = True
        owned_labels = np.where(keep[labels], labels, 0)
        objects, extra = measure(owned_labels, pixels, tile)
    return _Local(tile, labels, keys, ids, objects, extra)


def process_tiles(
    read: Reader,
    shape: tuple[int, int],
    *,
    segment: Segmenter,
    measure: Measurer | None = None,
    tile: int = 2048,
    overlap: int = 128,
    halo: int = 16,
    skip: Callable[[Tile], bool] | None = None,
    workers: int = 1,
) -> Iterator[TileResult]:
    """Segment (and measure) an image tile by tile, yielding tiles in raster order.

    Parameters
    ----------
    read : callable ``(r0, c0, r1, c1) -> ndarray``
        Pixels of a box (rows r0..r1, cols c0..c1, end-exclusive), any dtype/channels.
    shape : (height, width)
    segment : callable ``pixels -> labels``
        Must be deterministic and local: a fixed threshold, not one computed per window.
    measure : callable ``(labels, pixels, tile) -> (pyarrow.Table, extra)``, optional
        Measures the objects the tile owns (the other labels are zeroed) in the window
        (top-left ``tile.window[:2]``, to add to coordinates); the table's ``label``
        column is replaced by global ids; ``extra`` (anything, e.g. counters of the core)
        is passed through on the result. Also called for windows without objects.
    tile, overlap, halo : int
        Core side, window margin and segmenter context, pixels (``overlap > halo``).
    skip : callable ``Tile -> bool``, optional
        Tiles to leave empty without reading (e.g. no tissue).
    workers : int
        Tiles processed in parallel threads (OpenCV and libvips release the GIL).

    Yields
    ------
    TileResult
        Core labels (uint32, global ids, 0 = background) and owned objects.
    """
    import pyarrow as pa

    if overlap <= halo:
        raise InvalidParameter("overlap must be larger than halo")
    grid = tile_grid(shape[0], shape[1], tile=tile, overlap=overlap)
    ids: dict[int, int] = {}
    next_id = 1
    current_row = -1

    def work(t: Tile) -> _Local | None:
        if skip is not None and skip(t):
            return None
        return _analyse_window(t, read, segment, measure, shape, overlap, halo)

    for t, local in _ordered(grid, work, workers):
        if t.row != current_row:
            current_row = t.row
            # first pixels this far above the row's cores can never be seen again
            limit = (t.core[0] - overlap) * shape[1]
            for key in [k for k in ids if k < limit]:
                del ids[key]
        cr0, cc0, cr1, cc1 = t.core
        if local is None:
            yield TileResult(t, np.zeros((cr1 - cr0, cc1 - cc0), np.uint32), None)
            continue
        lut = np.zeros(int(local.labels.max()) + 1 if local.labels.size else 1, np.uint32)
        for key, lid in zip(local.keys.tolist(), local.local_ids.tolist(), strict=True):
            gid = ids.get(key)
            if gid is None:
                gid = ids[key] = next_id
                next_id += 1
            lut[lid] = gid
        wr0, wc0 = t.window[:2]
        core = lut[local.labels[cr0 - wr0 : cr1 - wr0, cc0 - wc0 : cc1 - wc0]]
        objects = local.objects
        if objects is not None and objects.num_rows:
            glabels = lut[objects.column("label").to_numpy()].astype(np.int64)
            objects = objects.set_column(
                objects.schema.get_field_index("label"), "label", pa.array(glabels)
            )
        yield TileResult(t, core, objects, local.extra)


def _ordered(
    grid: list[Tile], work: Callable[[Tile], _Local | None], workers: int
) -> Iterator[tuple[Tile, _Local | None]]:
    if workers <= 1:
        for t in grid:
            yield t, work(t)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tile") as pool:
        pending: list[tuple[Tile, Future[_Local | None]]] = []
        feed: Iterable[Tile] = iter(grid)
        for t in feed:
            pending.append((t, pool.submit(work, t)))
            if len(pending) >= workers:
                first, fut = pending.pop(0)
                yield first, fut.result()
        for t, fut in pending:
            yield t, fut.result()


def stitch(results: Iterable[TileResult], shape: tuple[int, int]) -> np.ndarray:
    """Assemble core labels into one (H, W) uint32 image (small images and tests)."""
    out = np.zeros(shape, np.uint32)
    for res in results:
        r0, c0, r1, c1 = res.tile.core
        out[r0:r1, c0:c1] = res.labels
    return out


def same_objects(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label images hold the same objects (equal up to renumbering)."""
    if a.shape != b.shape or not np.array_equal(a > 0, b > 0):
        return False
    fg = a > 0
    pairs = np.unique(np.stack([a[fg].astype(np.int64), b[fg].astype(np.int64)]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


__all__ = ["Tile", "TileResult", "process_tiles", "same_objects", "stitch", "tile_grid"]
