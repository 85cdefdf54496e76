"""Masks to labelled objects: opening, hole filling, distance-transform watershed to split
touching round objects, size filtering and relabelling.

bool masks in; label images out, uint16 when there are fewer than 65,536 objects, else
uint32; 0 is background; labels are 1..N in raster order of each object's first pixel.
Areas and distances are in pixels.
"""

from __future__ import annotations

import numpy as np

from pixelmill.imaging.analysis._arrays import check_image, gaussian64, label_dtype, squeeze


def fill_holes(mask: np.ndarray, *, max_area: int | None = None) -> np.ndarray:
    """Fill background regions not connected to the image border (4-connected), or only
    those up to ``max_area`` pixels. bool in, bool out."""
    import cv2

    inv = np.pad((~mask).astype(np.uint8), 1, constant_values=1)
    cv2.floodFill(inv, None, (0, 0), 0)
    holes = inv[1:-1, 1:-1].astype(bool)
    if max_area is not None and holes.any():
        _n, hole_labels, stats, _ = cv2.connectedComponentsWithStats(
            holes.astype(np.uint8), connectivity=4
        )
        small = stats[:, cv2.CC_STAT_AREA] <= max_area
        small[0] = False
        holes = small[hole_labels]
    return np.asarray(mask | holes)


def open_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """Morphological opening with a disk of ``radius`` pixels (removes specks and thin
    bridges). bool in, bool out; radius 0 returns the mask."""
    import cv2

    if radius <= 0:
        return mask
    r = int(radius)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return np.asarray(cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, disk)).astype(bool)


def split_touching(mask: np.ndarray, *, min_distance: float, h: float | None = None) -> np.ndarray:
    """Label a mask, splitting touching round objects with a distance-transform watershed.

    Candidate markers are maxima of the (lightly smoothed) Euclidean distance transform
    that are the largest within ``min_distance`` pixels (to within a few pixels beyond
    :data:`MAX_EXACT_RADIUS` px, so that the cost stays proportional to the pixels
    whatever the distance: a mask that is one object has a typical radius of the
    image's size). A component with two or more candidates is split by a watershed of
    the negated distance from them, and then its basins are merged back unless their
    peak rises at least ``h`` pixels (default 1; ImageJ's binary watershed uses 0.5)
    above the saddle to a higher basin — the h-maxima rule, so the ridge of an elongated
    blob is not cut into slices.

    Returns
    -------
    numpy.ndarray
        int32 (H, W) labels, 0 = background, not necessarily consecutive.
    """
    import cv2

    mask8 = mask.astype(np.uint8)
    n, comps, stats, _centres = cv2.connectedComponentsWithStats(
        mask8, connectivity=8, ltype=cv2.CV_32S
    )
    if n <= 1:
        return comps
    dist = np.asarray(cv2.distanceTransform(mask8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE))

    def finish(block: np.ndarray, rows: slice) -> None:
        np.round(block, 4, out=block)
        block *= mask8[rows]

    # float64 blur rounded to 1e-4 px: float32 rounding differs between an image and
    # its rotation, and would break ties between peaks differently (not invariant)
    smooth = gaussian64(dist, 1.0, finish)
    del dist
    peaks = _largest_within(smooth, max(1, round(min_distance))) & (smooth > 0.5)
    n_peaks, peak_labels = cv2.connectedComponents(
        peaks.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
    )
    del peaks
    if n_peaks <= 2:
        return comps
    # candidate markers per component: count distinct peak regions inside each component
    idx = np.flatnonzero(peak_labels)
    pairs = np.unique(np.stack([comps.ravel()[idx], peak_labels.ravel()[idx]]), axis=1)
    per_comp = np.bincount(pairs[0], minlength=n)
    clumps = np.flatnonzero(per_comp >= 2)
    if clumps.size == 0:
        return comps
    depth = 1.0 if h is None else h
    in_clump = np.zeros(n, bool)
    in_clump[clumps] = True
    next_id = n
    # the clumps a band of rows at a time (those whose first row is in the band), so the
    # watershed's copies (about 30 bytes a pixel) hold a band, not the image; clumps do
    # not touch, so each is split as it would be among all the others
    band_of = np.full(n, -1, np.int32)
    for band, members in enumerate(_bands(stats, clumps)):
        band_of[members] = band
        top = int(stats[members, cv2.CC_STAT_TOP].min())
        bottom = int((stats[members, cv2.CC_STAT_TOP] + stats[members, cv2.CC_STAT_HEIGHT]).max())
        part = comps[top:bottom]
        region = np.zeros(part.shape, bool)
        old = part < n  # pixels an earlier band split hold new labels (>= n)
        region[old] = band_of[part[old]] == band
        del old
        cols = np.flatnonzero(region.any(axis=0))
        box = (slice(top, bottom), slice(int(cols[0]), int(cols[-1]) + 1))
        region = region[:, box[1]]
        next_id = _split_clumps(comps, box, region, smooth[box], peak_labels[box], next_id, depth)
    return comps


def _bands(stats: np.ndarray, clumps: np.ndarray, rows: int = 256) -> list[np.ndarray]:
    """The components ``clumps`` grouped by the band of ``rows`` image rows their first
    row lies in (``stats``: OpenCV's component statistics), bands top to bottom."""
    import cv2

    band = stats[clumps, cv2.CC_STAT_TOP] // rows
    order = np.argsort(band, kind="stable")
    cuts = np.flatnonzero(np.diff(band[order])) + 1
    return [np.asarray(clumps[group]) for group in np.split(order, cuts)]


def _split_clumps(
    comps: np.ndarray,
    box: tuple[slice, slice],
    region: np.ndarray,
    height: np.ndarray,
    peak_labels: np.ndarray,
    next_id: int,
    depth: float,
) -> int:
    """Split the clumps (``region``, a mask of ``box``) of ``comps`` in place: one
    watershed basin per candidate peak, then basins whose peak rises less than ``depth``
    above the saddle to a higher basin are merged into it (the h-maxima rule). New
    labels start at ``next_id``; returns the next free one."""
    from skimage.segmentation import watershed

    # the band's peaks numbered 1..k in the same order (the merge breaks ties by number)
    seeds = np.where(region, peak_labels, 0)
    present = np.unique(seeds[seeds > 0])  # a clump has two peaks or more
    number = np.zeros(int(present[-1]) + 1, np.int32)
    number[present] = np.arange(1, len(present) + 1, dtype=np.int32)
    markers = number[seeds]
    del seeds
    count = len(present) + 1
    basins = watershed(-height, markers, mask=region)
    del markers
    merged = _merge_shallow_basins(basins, height, count, depth)
    ids = np.unique(merged[region])
    lut = np.zeros(count, np.int32)
    lut[ids] = np.arange(next_id, next_id + len(ids), dtype=np.int32)
    comps[box][region] = lut[merged[region]]
    return next_id + len(ids)


#: the largest radius (px) of the disc over which :func:`split_touching` compares marker
#: candidates pixel by pixel. A dilation with a disc costs pixels x radius², and a mask
#: that is one object over the whole image has a "typical radius" of the image (radius
#: 700 px took minutes on 2100²); beyond this the comparison runs on blocks instead.
MAX_EXACT_RADIUS = 32


def _largest_within(height: np.ndarray, radius: int) -> np.ndarray:
    """Pixels of ``height`` (float32, >= 0) that are its largest value within ``radius``
    px (a disc). Exact up to :data:`MAX_EXACT_RADIUS`; a larger radius compares the
    maxima of f x f blocks (f = radius / MAX_EXACT_RADIUS, rounded up) over a disc of
    radius / f blocks: its reach is right to within a block (and, the blocks being
    anchored at the top left, not exactly the same for a flipped image), and the cost
    stays that of the exact radius bound whatever the radius."""
    import cv2

    if radius <= MAX_EXACT_RADIUS:
        return np.asarray(height >= cv2.dilate(height, _disc(radius)))
    f = -(-radius // MAX_EXACT_RADIUS)
    rows, cols = height.shape
    padded = np.pad(height, ((0, -rows % f), (0, -cols % f)))
    blocks = padded.reshape(padded.shape[0] // f, f, padded.shape[1] // f, f).max(axis=(1, 3))
    near = np.asarray(cv2.dilate(blocks, _disc(round(radius / f))))
    return np.asarray(height >= near.repeat(f, axis=0).repeat(f, axis=1)[:rows, :cols])


def _disc(radius: int) -> np.ndarray:
    import cv2

    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))


def _merge_shallow_basins(
    basins: np.ndarray, height: np.ndarray, count: int, depth: float
) -> np.ndarray:
    """Merge watershed basins by dynamics: visiting saddles from the highest down, two
    basins merge when the lower of their peaks rises less than ``depth`` above the
    saddle between them. Returns the basin image relabelled to surviving basins."""
    peak = np.zeros(count)
    fg = basins > 0
    np.maximum.at(peak, basins[fg], height[fg])
    lo_parts, hi_parts, saddle_parts = [], [], []
    for a, b, ha, hb in (
        (basins[:, :-1], basins[:, 1:], height[:, :-1], height[:, 1:]),
        (basins[:-1], basins[1:], height[:-1], height[1:]),
    ):
        touch = (a != b) & (a > 0) & (b > 0)
        av, bv = a[touch].astype(np.int64), b[touch].astype(np.int64)
        lo_parts.append(np.minimum(av, bv))
        hi_parts.append(np.maximum(av, bv))
        saddle_parts.append(np.minimum(ha[touch], hb[touch]).astype(np.float64))
    lo, hi = np.concatenate(lo_parts), np.concatenate(hi_parts)
    if lo.size == 0:
        return basins
    keys, inverse = np.unique(lo * count + hi, return_inverse=True)
    saddle = np.full(len(keys), -np.inf)
    np.maximum.at(saddle, inverse, np.concatenate(saddle_parts))
    parent = np.arange(count)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    best = peak.copy()
    # highest saddles first; ties in a fixed order of the (rounded) values themselves
    order = np.lexsort((keys, -saddle))
    for e in order:
        ra, rb = find(int(keys[e] // count)), find(int(keys[e] % count))
        if ra == rb or min(best[ra], best[rb]) - saddle[e] >= depth:
            continue
        keep, gone = (ra, rb) if best[ra] >= best[rb] else (rb, ra)
        parent[gone] = keep
    roots = np.array([find(i) for i in range(count)])
    return np.asarray(roots[basins])


def filter_objects(
    labels: np.ndarray,
    *,
    min_area: int = 0,
    max_area: int | None = None,
    exclude_border: bool = False,
) -> np.ndarray:
    """Drop objects outside ``[min_area, max_area]`` pixels (and, with
    ``exclude_border``, those touching the image edge); relabel 1..N in raster order of
    each object's first pixel. Returns uint16 or uint32 (see module docs)."""
    flat = labels.ravel()
    if flat.size == 0 or not flat.any():
        return np.zeros(labels.shape, np.uint16)
    top = int(flat.max())
    areas = _counts(flat, top + 1)
    keep = areas >= max(min_area, 1)
    if max_area is not None:
        keep &= areas <= max_area
    keep[0] = False
    if exclude_border:
        edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        keep[np.unique(edge)] = False
    # raster order of first pixels: the order of first appearance in the flat array
    fg = np.flatnonzero(keep[flat])
    first = np.full(top + 1, flat.size, np.int64)
    np.minimum.at(first, flat[fg], fg)
    ids = np.flatnonzero(keep)
    ids = ids[np.argsort(first[ids], kind="stable")]
    dtype = label_dtype(len(ids))
    lut = np.zeros(top + 1, dtype)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=dtype)
    return lut[labels]  # np.take would copy the labels to int64 first


def _counts(flat: np.ndarray, size: int) -> np.ndarray:
    """``np.bincount(flat, minlength=size)`` a few million values at a time: bincount
    copies its input to int64 (8 bytes a pixel for the whole image) first."""
    out = np.zeros(size, np.int64)
    step = 1 << 22
    for start in range(0, flat.size, step):
        out += np.bincount(flat[start : start + step], minlength=size)
    return out


def typical_radius(mask: np.ndarray) -> float:
    """The radius (px, at least 3) of a disc with the median area of ``mask``'s
    8-connected components; 3 when it has none."""
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return 3.0
    median_area = float(np.median(stats[1:, cv2.CC_STAT_AREA]))
    return max(3.0, float(np.sqrt(median_area / np.pi)))


def label_mask(mask: np.ndarray) -> np.ndarray:
    """Connected components (8-connected) of a mask as a label image (uint16/uint32)."""
    import cv2

    check_image(mask, channels=(1,), what="labelling")
    binary = (squeeze(mask) > 0).astype(np.uint8)
    labels = np.asarray(cv2.connectedComponents(binary, connectivity=8, ltype=cv2.CV_32S)[1])
    return filter_objects(labels)


__all__ = [
    "fill_holes",
    "filter_objects",
    "label_mask",
    "open_mask",
    "split_touching",
    "typical_radius",
]
