"""Shared plumbing of the analysis operations: libvips ↔ numpy, and how a label image
flows between steps.

The label contract
------------------
A segmentation step (``segment_nuclei``, ``threshold``) stores its label image in
``ctx.artifacts["labels"]`` as :class:`LabelArtifact` — TIFF bytes (uint16 or uint32,
deflate; a job stores them as its ``labels`` result) that also carry the decoded array,
so later steps (``measure``, ``overlay``) read it without decoding. It also stores
``ctx.artifacts["segmentation"]``, a JSON dict (threshold used, object count, ...).
``measure`` stores ``ctx.artifacts["objects"]`` (a ``pyarrow.Table``) and
``ctx.artifacts["summary"]`` (a JSON dict). Intensities are measured on
``ctx.original`` (the image before the pipeline) unless a step says otherwise, so
preprocessing for segmentation never changes the numbers. Steps that change geometry
after a segmentation make the labels stale: ``measure``/``overlay`` then refuse with 422.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyvips

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.ops._base import OpContext
from pixelmill.imaging.pixels import split_alpha

_COLOUR = frozenset({"srgb", "b-w", "rgb16", "grey16", "scrgb"})
_VIPS_TO_NUMPY = {
    "uchar": np.uint8,
    "char": np.int8,
    "ushort": np.uint16,
    "short": np.int16,
    "uint": np.uint32,
    "int": np.int32,
    "float": np.float32,
    "double": np.float64,
}


def to_array(image: pyvips.Image) -> tuple[np.ndarray, pyvips.Image | None]:
    """Pixels as (H, W) or (H, W, C) numpy (alpha removed), and the alpha band if any.

    Complex images are refused; other formats keep their dtype (int8/int16/int32/uint32
    are converted to float32 on the common scale by the analysis functions).
    """
    # a 4-channel fluorescence stack is "multiband": only colour images carry alpha
    has_alpha = str(image.interpretation) in _COLOUR and image.bands in (2, 4)
    colour, alpha = split_alpha(image) if has_alpha else (image, None)
    if str(colour.format) not in _VIPS_TO_NUMPY:
        raise InvalidParameter(f"analysis cannot use {colour.format} pixels")
    arr = np.asarray(colour.numpy())
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return arr, alpha


def from_array(array: np.ndarray, alpha: pyvips.Image | None = None) -> pyvips.Image:
    """A numpy image as a libvips image with a sensible interpretation (b-w/srgb for
    8-bit, grey16/rgb16 for 16-bit, multiband otherwise); ``alpha`` is re-attached,
    cast to the image's format, when given."""
    arr = np.ascontiguousarray(array)
    bands = 1 if arr.ndim == 2 else arr.shape[2]
    if arr.dtype == np.uint8:
        interp = "b-w" if bands == 1 else "srgb" if bands == 3 else "multiband"
    elif arr.dtype == np.uint16:
        interp = "grey16" if bands == 1 else "rgb16" if bands == 3 else "multiband"
    else:
        interp = "b-w" if bands == 1 else "multiband"
    out = pyvips.Image.new_from_array(arr, interpretation=interp)
    if alpha is not None and alpha.width == out.width and alpha.height == out.height:
        if str(out.format) == "ushort" and str(alpha.format) == "uchar":
            alpha = alpha.cast("ushort") * 257
        out = out.bandjoin(alpha.cast(out.format))
    return out


class LabelArtifact(bytes):
    """TIFF bytes of a label image that also hold the decoded array (``.array``) and
    the image the segmentation step was given (``.source``, a libvips image)."""

    array: np.ndarray
    source: pyvips.Image | None
    #: a step after the segmentation moved the image's pixels (:func:`labels_moved`)
    moved: bool = False

    def __new__(cls, labels: np.ndarray, source: pyvips.Image | None = None) -> LabelArtifact:
        from pixelmill.imaging.analysis.export import labels_to_tiff

        obj = super().__new__(cls, labels_to_tiff(labels))
        obj.array = labels
        obj.source = source
        return obj


def put_labels(
    ctx: OpContext, labels: np.ndarray, info: dict[str, Any], source: pyvips.Image
) -> None:
    ctx.artifacts["labels"] = LabelArtifact(labels, source)
    ctx.artifacts["segmentation"] = info


def reference_image(
    ctx: OpContext, labels: np.ndarray | None, fallback: pyvips.Image
) -> pyvips.Image:
    """The image to measure on and draw over: ``ctx.original`` when it matches the
    labels' size, else the image the segmentation step was given (a geometric step ran
    before it), else ``fallback``."""
    original = ctx.original
    if labels is None:
        return original if original is not None else fallback
    if original is not None and (original.height, original.width) == labels.shape:
        return original
    value = ctx.artifacts.get("labels")
    source = getattr(value, "source", None)
    if source is not None and (source.height, source.width) == labels.shape:
        return source
    return fallback


def labels_moved(ctx: OpContext) -> None:
    """Note that a step moved or resized the image's pixels: labels made before it no
    longer fit, even at the same size (a flip)."""
    value = ctx.artifacts.get("labels")
    if isinstance(value, LabelArtifact):
        value.moved = True


def check_fits(ctx: OpContext, labels: np.ndarray, image: pyvips.Image) -> None:
    """Refuse (422) labels that no longer fit the current ``image``: of another size, or
    a step after the segmentation moved its pixels. The pipeline's parse refuses such a
    pipeline first; this is the backstop when the steps run."""
    moved = getattr(ctx.artifacts.get("labels"), "moved", False)
    if moved or labels.shape != (image.height, image.width):
        raise InvalidParameter(
            "the labels no longer match the image: a step after the segmentation "
            "changed its geometry"
        )


def get_labels(ctx: OpContext, shape: tuple[int, int] | None = None) -> np.ndarray | None:
    """The current label image, or None when no step has segmented. With ``shape``,
    labels of another size (geometry changed after segmenting) are a 422."""
    value = ctx.artifacts.get("labels")
    if value is None:
        return None
    if isinstance(value, LabelArtifact):
        labels = value.array
    elif isinstance(value, (bytes, bytearray)):
        from pixelmill.imaging.analysis.export import labels_from_tiff

        labels = labels_from_tiff(bytes(value))
    else:
        labels = np.asarray(value)
    if shape is not None and labels.shape != shape:
        raise InvalidParameter(
            f"the labels ({labels.shape[1]}x{labels.shape[0]}) no longer match the image "
            f"({shape[1]}x{shape[0]}): a step after the segmentation changed its geometry"
        )
    return labels


def labels_image(labels: np.ndarray) -> pyvips.Image:
    """A label array as a one-band libvips image (ushort or uint)."""
    return pyvips.Image.new_from_array(np.ascontiguousarray(labels), interpretation="b-w")


__all__ = [
    "LabelArtifact",
    "check_fits",
    "from_array",
    "get_labels",
    "labels_image",
    "labels_moved",
    "put_labels",
    "reference_image",
    "to_array",
]
