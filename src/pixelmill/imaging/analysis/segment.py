"""Classical segmentation of nuclei and cells: :func:`segment_nuclei` chains a threshold
(:mod:`.thresholds`) and mask clean-up, watershed splitting and size filtering
(:mod:`.morphology`); :func:`pick_channel` chooses the plane to segment. The building
blocks stay importable from here, where callers have always found them.

Intensities are compared on the common scale (integers / full scale, floats as they
are), so thresholds and offsets mean the same for 8-bit, 16-bit and float inputs. Areas
are in pixels, distances in pixels. Label images are uint16 when there are fewer than
65,536 objects, else uint32; 0 is background; labels are 1..N in raster order of each
object's first pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.analysis._arrays import check_image, squeeze, to_float
from pixelmill.imaging.analysis.morphology import (
    fill_holes,
    filter_objects,
    label_mask,
    open_mask,
    split_touching,
    typical_radius,
)
from pixelmill.imaging.analysis.thresholds import (
    Foreground,
    ThresholdMethod,
    noise_sigma,
    prepare,
    threshold,
    threshold_value,
)


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
        why = _too_faint(image, values, mask, min_snr, info)
        if why is not None:
            return _empty(values.shape, t, min_distance, why, info)
    del values  # 4 bytes a pixel, not needed by the steps below
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


def _too_faint(
    image: np.ndarray, values: np.ndarray, mask: np.ndarray, min_snr: float, info: dict[str, Any]
) -> str | None:
    """Why a computed threshold separates nothing worth segmenting, or ``None``: the two
    classes' medians differ by less than ``min_snr`` x the image's noise sigma (both on
    the common scale, recorded in ``info``), or no pixel is background."""
    # one class's pixels at a time, their copies sorted in place (overwrite_input)
    outside = values[~mask]
    if outside.size == 0:
        return "every pixel is above the threshold"
    median_outside = float(np.median(outside, overwrite_input=True))
    del outside
    median_inside = float(np.median(values[mask], overwrite_input=True))
    contrast = abs(median_inside - median_outside)
    noise = noise_sigma(image)
    info.update(contrast=contrast, noise=noise)
    if contrast < min_snr * noise:
        return (
            f"foreground/background contrast {contrast:.4g} is below "
            f"{min_snr} x noise {noise:.4g}: no objects"
        )
    return None


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
        nuclear, dab = stain.stain_planes(image, stains="hdab", keep=(0, 1))
        np.maximum(nuclear, 0, out=nuclear)
        nuclear += np.maximum(dab, 0)
        return nuclear
    if channel in CHANNEL_NAMES:
        return stain.stain_channel(image, channel)
    raise InvalidParameter(f"unknown channel {channel!r}", known=list(CHANNEL_NAMES))


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
