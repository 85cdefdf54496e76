"""Classical segmentation: global and local thresholds, morphological clean-up, hole
filling, distance-transform watershed to split touching nuclei, size filtering.

Intensities are compared on the common scale (integers / full scale, floats as they
are), so thresholds and offsets mean the same for 8-bit, 16-bit and float inputs. Areas
are in pixels, distances in pixels. Label images are uint16 when there are fewer than
65,536 objects, else uint32; 0 is background; labels are 1..N in raster order of each
object's first pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis._arrays import check_image, label_dtype, squeeze, to_float

ThresholdMethod = Literal["otsu", "li", "triangle", "yen", "isodata", "mean", "local"]
Foreground = Literal["bright", "dark"]

#: pixels looked at by iterative threshold methods (li) on large images
_SAMPLE = 1_000_000


def prepare(image: np.ndarray, *, sigma: float = 1.0) -> np.ndarray:
    """The image segmentation works on: one channel, float32 on the common scale,
    Gaussian-smoothed with ``sigma`` pixels (0 = no smoothing).

    Parameters
    ----------
    image : (H, W) or (H, W, 1) uint8, uint16, float32 or float64

    Returns
    -------
    numpy.ndarray
        float32 (H, W).

    Examples
    --------
    >>> prepare(np.full((4, 4), 255, np.uint8), sigma=0).max()
    np.float32(1.0)
    """
    import cv2

    check_image(image, channels=(1,), what="segmentation")
    work = to_float(squeeze(image))
    if sigma > 0:
        work = np.asarray(cv2.GaussianBlur(work, (0, 0), sigmaX=float(sigma), sigmaY=float(sigma)))
    elif work is image:
        work = work.copy()
    return work


def threshold_value(values: np.ndarray, *, method: ThresholdMethod = "otsu") -> float:
    """A global threshold of ``values`` (any float array) by a histogram method.

    ``otsu``, ``li``, ``triangle``, ``yen``, ``isodata`` and ``mean`` are scikit-image's
    (Li on a fixed sample of at most one million pixels). Returns the threshold in the
    units of ``values``; a constant image returns its value.
    """
    from skimage import filters

    flat = values.ravel()
    lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:
        return hi
    fns: dict[str, Any] = {
        "otsu": filters.threshold_otsu,
        "triangle": filters.threshold_triangle,
        "yen": filters.threshold_yen,
        "isodata": filters.threshold_isodata,
        "mean": filters.threshold_mean,
    }
    if method == "li":
        step = max(1, flat.size // _SAMPLE)
        return float(filters.threshold_li(flat[::step]))
    if method not in fns:
        raise InvalidParameter(f"{method!r} is not a global threshold method", known=sorted(fns))
    return float(fns[method](flat))


def threshold(
    values: np.ndarray,
    *,
    method: ThresholdMethod = "otsu",
    foreground: Foreground = "bright",
    value: float | None = None,
    block_size: int = 51,
    offset: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Foreground mask of a prepared (float, one-channel) image.

    Parameters
    ----------
    values : (H, W) float32
        Usually :func:`prepare`'s output.
    method : {"otsu", "li", "triangle", "yen", "isodata", "mean", "local"}
        ``local``: each pixel against the mean of its ``block_size`` x ``block_size``
        neighbourhood plus ``offset`` (minus for dark objects).
    foreground : {"bright", "dark"}
        Fluorescence nuclei are bright; stained nuclei on a brightfield grey image dark.
    value : float, optional
        A fixed global threshold (common scale); overrides ``method``.
    block_size : int
        Odd neighbourhood side of the local method, pixels.
    offset : float
        Local method: how much brighter (darker) than the neighbourhood mean, common scale.

    Returns
    -------
    (mask, threshold)
        bool (H, W) mask and the global threshold used (NaN for ``local``).
    """
    import cv2

    if value is not None:
        t = float(value)
    elif method == "local":
        if block_size < 3 or block_size % 2 == 0:
            raise InvalidParameter("block_size must be an odd number >= 3")
        local = np.asarray(cv2.blur(values, (block_size, block_size)))
        if foreground == "bright":
            return values > local + np.float32(offset), float("nan")
        return values < local - np.float32(offset), float("nan")
    else:
        t = threshold_value(values, method=method)
    mask = values > t if foreground == "bright" else values < t
    return mask, t


def noise_sigma(image: np.ndarray) -> float:
    """Robust noise standard deviation of a one-channel image on the common scale:
    the median absolute horizontal difference / (0.6745 x sqrt(2)), from every 4th row."""
    work = to_float(squeeze(image))[::4]
    if work.shape[1] < 2:
        return 0.0
    diffs = np.abs(np.diff(work, axis=1)).ravel()
    return float(np.median(diffs) / (0.6745 * np.sqrt(2.0)))


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
    that are the largest within ``min_distance`` pixels. A component with two or more
    candidates is split by a watershed of the negated distance from them, and then its
    basins are merged back unless their peak rises at least ``h`` pixels (default 1;
    ImageJ's binary watershed uses 0.5) above the saddle to a higher basin — the
    h-maxima rule, so the ridge of an elongated blob is not cut into slices.

    Returns
    -------
    numpy.ndarray
        int32 (H, W) labels, 0 = background, not necessarily consecutive.
    """
    import cv2
    from skimage.segmentation import watershed

    mask8 = mask.astype(np.uint8)
    n, comps = cv2.connectedComponents(mask8, connectivity=8, ltype=cv2.CV_32S)
    if n <= 1:
        return np.asarray(comps)
    dist = np.asarray(cv2.distanceTransform(mask8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE))
    # float64 blur rounded to 1e-4 px: float32 rounding differs between an image and
    # its rotation, and would break ties between peaks differently (not invariant)
    blurred = np.asarray(cv2.GaussianBlur(dist.astype(np.float64), (0, 0), 1.0))
    np.round(blurred, 4, out=blurred)
    blurred *= mask8
    smooth = blurred.astype(np.float32)
    del blurred, dist
    r = max(1, round(min_distance))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    peaks = (smooth >= np.asarray(cv2.dilate(smooth, kernel))) & (smooth > 0.5)
    n_peaks, peak_labels = cv2.connectedComponents(
        peaks.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
    )
    if n_peaks <= 2:
        return np.asarray(comps)
    # candidate markers per component: count distinct peak regions inside each component
    idx = np.flatnonzero(peak_labels)
    pairs = np.unique(np.stack([comps.ravel()[idx], peak_labels.ravel()[idx]]), axis=1)
    per_comp = np.bincount(pairs[0], minlength=n)
    clumps = np.flatnonzero(per_comp >= 2)
    if clumps.size == 0:
        return np.asarray(comps)
    depth = 1.0 if h is None else h
    in_clump = np.zeros(n, bool)
    in_clump[clumps] = True
    region_full = in_clump[comps]
    rows = np.flatnonzero(region_full.any(axis=1))
    cols = np.flatnonzero(region_full.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    region, height = region_full[box], smooth[box]
    # one watershed basin per candidate peak, then basins whose peak rises less than
    # `depth` above the saddle to a higher basin are merged into it (the h-maxima rule)
    basins = watershed(-height, np.where(region, peak_labels[box], 0), mask=region)
    merged = _merge_shallow_basins(basins, height, n_peaks, depth)
    out = comps.copy()
    ids = np.unique(merged[region])
    lut = np.zeros(n_peaks, np.int32)
    lut[ids] = np.arange(n, n + len(ids), dtype=np.int32)
    out[box][region] = lut[merged[region]]
    return out


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
    areas = np.bincount(flat, minlength=top + 1)
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
    return np.take(lut, labels)


@dataclass(frozen=True)
class Segmentation:
    """A segmentation result: the label image and what was decided on the way.

    ``labels``: uint16/uint32 (H, W), 0 = background; ``threshold``: the global threshold
    used (common scale; NaN for local); ``min_distance``: the watershed marker distance
    used (pixels); ``rejected``: why no objects were found, if so.
    """

    labels: np.ndarray
    threshold: float
    min_distance: float
    rejected: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        """bool (H, W): True inside any object."""
        return np.asarray(self.labels > 0)

    @property
    def count(self) -> int:
        return int(self.labels.max()) if self.labels.size else 0


def segment_nuclei(
    image: np.ndarray,
    *,
    sigma: float = 1.0,
    method: ThresholdMethod = "otsu",
    fixed_threshold: float | None = None,
    foreground: Foreground = "bright",
    block_size: int = 51,
    offset: float = 0.0,
    opening_radius: int = 1,
    fill: bool = True,
    max_hole_area: int | None = None,
    split: bool = True,
    min_distance: float | None = None,
    min_area: int = 20,
    max_area: int | None = None,
    exclude_border: bool = False,
    min_snr: float = 3.0,
) -> Segmentation:
    """Segment round objects (nuclei, cells, colonies) in a one-channel image.

    Steps: Gaussian smoothing (``sigma`` px) → threshold (``method``, or the fixed
    ``fixed_threshold``) → opening (``opening_radius`` px) → hole filling (holes up to
    ``max_hole_area`` px, all when None) → distance-transform watershed (``split``) →
    size filter (``min_area``..``max_area`` px) → optional removal of border objects.

    When the threshold is computed, it is rejected (0 objects, ``rejected`` says why) if
    the two classes it separates differ by less than ``min_snr`` x the image's noise
    sigma: an all-background image gives no objects rather than segmented noise.
    ``min_distance`` defaults to 0.6 x the radius of the median component.

    Parameters
    ----------
    image : (H, W) or (H, W, 1) uint8, uint16, float32 or float64

    Returns
    -------
    Segmentation

    Examples
    --------
    >>> img = np.zeros((64, 64), np.uint8)
    >>> img[10:20, 10:20] = 200; img[40:52, 30:44] = 180
    >>> segment_nuclei(img, min_area=10).count
    2
    """
    values = prepare(image, sigma=sigma)
    mask, t = threshold(
        values,
        method=method,
        foreground=foreground,
        value=fixed_threshold,
        block_size=block_size,
        offset=offset,
    )
    info: dict[str, Any] = {}
    if fixed_threshold is None and method != "local" and min_snr > 0 and mask.any():
        inside, outside = values[mask], values[~mask]
        if outside.size == 0:
            return _empty(values.shape, t, min_distance, "every pixel is above the threshold")
        contrast = abs(float(np.median(inside)) - float(np.median(outside)))
        noise = noise_sigma(image)
        info.update(contrast=contrast, noise=noise)
        if contrast < min_snr * noise:
            return _empty(
                values.shape,
                t,
                min_distance,
                f"foreground/background contrast {contrast:.4g} is below "
                f"{min_snr} x noise {noise:.4g}: no objects",
                info,
            )
    mask = open_mask(mask, opening_radius)
    if fill:
        mask = fill_holes(mask, max_area=max_hole_area)
    if split:
        if min_distance is None:
            min_distance = typical_radius(mask) * 0.6
        labels = split_touching(mask, min_distance=min_distance)
    else:
        import cv2

        labels = np.asarray(cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[1])
    out = filter_objects(
        labels, min_area=min_area, max_area=max_area, exclude_border=exclude_border
    )
    return Segmentation(out, t, float(min_distance or 0.0), None, info)


def typical_radius(mask: np.ndarray) -> float:
    """The radius (px, at least 3) of a disc with the median area of ``mask``'s
    8-connected components; 3 when it has none."""
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return 3.0
    median_area = float(np.median(stats[1:, cv2.CC_STAT_AREA]))
    return max(3.0, float(np.sqrt(median_area / np.pi)))


def _empty(
    shape: tuple[int, ...],
    t: float,
    min_distance: float | None,
    why: str,
    info: dict[str, Any] | None = None,
) -> Segmentation:
    return Segmentation(np.zeros(shape, np.uint16), t, float(min_distance or 0.0), why, info or {})


#: names accepted by :func:`pick_channel` besides channel indices
CHANNEL_NAMES = ("auto", "hematoxylin", "eosin", "dab", "nuclear", "od")


def pick_channel(image: np.ndarray, channel: int | str = "auto") -> np.ndarray:
    """The one channel to segment.

    ``auto``: a one-channel image itself, the luminance of RGB (uint8 stays uint8; others
    float32 on the common scale), channel 0 otherwise; an ``int``: that channel;
    ``hematoxylin``/``eosin``/``dab``: the stain's concentration (float32, OD units) by
    colour deconvolution of RGB; ``nuclear``: hematoxylin + DAB (both stain nuclei in
    nuclear IHC); ``od``: mean optical density of RGB.

    Examples
    --------
    >>> pick_channel(np.zeros((4, 4, 3), np.uint8)).shape
    (4, 4)
    """
    import cv2

    from pixelmill.imaging.analysis import stain
    from pixelmill.imaging.analysis._arrays import n_channels

    check_image(image, what="segmentation")
    n = n_channels(image)
    if isinstance(channel, int):
        if not -n <= channel < n:
            raise InvalidParameter(
                f"channel {channel} does not exist: the image has {n} channel(s)", channels=n
            )
        return squeeze(image) if image.ndim == 2 else np.ascontiguousarray(image[..., channel])
    if channel == "auto":
        if n == 1:
            return squeeze(image)
        if n == 3:
            if image.dtype == np.uint8:
                return np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
            return np.asarray(cv2.cvtColor(to_float(image), cv2.COLOR_RGB2GRAY))
        return np.ascontiguousarray(image[..., 0])
    if channel == "nuclear":
        conc = stain.deconvolve(image, stains="hdab")
        return np.maximum(conc[..., 0], 0) + np.maximum(conc[..., 1], 0)
    if channel in CHANNEL_NAMES:
        return stain.stain_channel(image, channel)
    raise InvalidParameter(f"unknown channel {channel!r}", known=list(CHANNEL_NAMES))


def label_mask(mask: np.ndarray) -> np.ndarray:
    """Connected components (8-connected) of a mask as a label image (uint16/uint32)."""
    import cv2

    check_image(mask, channels=(1,), what="labelling")
    binary = (squeeze(mask) > 0).astype(np.uint8)
    labels = np.asarray(cv2.connectedComponents(binary, connectivity=8, ltype=cv2.CV_32S)[1])
    return filter_objects(labels)


__all__ = [
    "Segmentation",
    "fill_holes",
    "filter_objects",
    "label_mask",
    "noise_sigma",
    "open_mask",
    "pick_channel",
    "prepare",
    "segment_nuclei",
    "split_touching",
    "threshold",
    "threshold_value",
]
