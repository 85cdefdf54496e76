"""What a prediction answers with: the mask encoded (PNG with fast compression, or
``.npy``) and per-object measurements of it."""

from __future__ import annotations

import functools
import io
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.errors import PixelmillError
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.probe import ImageInfo
from pixelmill.ml.spec import InputSpec

if TYPE_CHECKING:
    from pixelmill.services.inference.loaded import LoadedModel

PNG = "image/png"
NPY = "application/x-npy"
#: zlib level of mask PNGs: a two-valued mask compresses well at level 1 already, and
#: level 6 (libvips' default) costs about 5x the time at 1024² (docs/ml.md, "Serving")
PNG_COMPRESSION = 1


def encode_mask(mask: NDArray[np.uint8], media_type: str = PNG) -> bytes:
    """A (rows, cols) uint8 mask (0 / 255) as PNG (8-bit grey) or ``.npy`` bytes.

    The PNG is written by OpenCV's libpng with no row filter and run-length zlib at
    level 1: a two-valued mask is long runs, which that codes in a third of the bytes of
    libvips' PNG at level 1 and in 0.1 instead of 1.1 ms at 256² (1.9 vs 2.6 ms at 1024²;
    docs/benchmarks.md, "Storing a mask, made cheaper"). The pixels are the same 8-bit grey for every decoder.
    """
    if media_type == NPY:
        out = io.BytesIO()
        np.save(out, np.ascontiguousarray(mask), allow_pickle=False)
        return out.getvalue()
    import cv2

    ok, png = cv2.imencode(".png", np.ascontiguousarray(mask), _png_params())
    if not ok:  # pragma: no cover - libpng fails only without memory
        raise PixelmillError("OpenCV could not encode the mask as PNG")
    return png.tobytes()


@functools.cache
def _png_params() -> tuple[int, ...]:
    """OpenCV's PNG flags of :func:`encode_mask` (cv2 is imported on first use)."""
    import cv2

    return (
        cv2.IMWRITE_PNG_COMPRESSION,
        PNG_COMPRESSION,
        cv2.IMWRITE_PNG_FILTER,
        cv2.IMWRITE_PNG_FILTER_NONE,
        cv2.IMWRITE_PNG_STRATEGY,
        cv2.IMWRITE_PNG_STRATEGY_RLE,
    )


def mask_info(mask: NDArray[np.uint8]) -> ImageInfo:
    """What probing :func:`encode_mask`'s PNG of ``mask`` finds, known without reading
    it back: a stored mask's record needs no header parse (tests compare the two)."""
    rows, cols = mask.shape[:2]
    return ImageInfo(
        format=ImageFormat.PNG,
        width=int(cols),
        height=int(rows),
        bands=1,
        bit_depth=8,
        pages=1,
        orientation=1,
        interpretation="b-w",
    )


def measure_mask(
    mask: NDArray[np.uint8],
    image: NDArray[np.generic],
    *,
    pixel_size_um: float | None = None,
    spec: InputSpec | None = None,
    distance: NDArray[np.float32] | None = None,
) -> dict[str, Any]:
    """Per-object measurements of a binary mask with the analysis measurements
    (:func:`pixelmill.imaging.analysis.measure.measure_objects`): the mask is split into
    objects first (:meth:`InputSpec.objects <pixelmill.ml.spec.InputSpec.objects>`, with
    the model's ``grow``, ``min_object_fraction`` and ``fill_holes``; a distance head's
    predicted ``distance`` seeds them).
    At most 1000 objects are listed."""
    import math

    from pixelmill.imaging.analysis.measure import measure_objects

    labels = (spec or InputSpec()).objects(mask > 0, distance)
    labels = labels.astype(np.uint16 if labels.max() < 65535 else np.uint32)
    intensity = image
    if image.ndim == 3 and image.shape[2] in (2, 4):  # drop alpha
        intensity = image[..., : image.shape[2] - 1]
    table = measure_objects(labels, intensity, pixel_size_um=pixel_size_um)
    areas = np.asarray(table.column("area_px").to_pylist(), dtype=np.float64)

    def clean(value: Any) -> Any:
        return None if isinstance(value, float) and not math.isfinite(value) else value

    return {
        "count": int(table.num_rows),
        "area_px": {
            "mean": float(areas.mean()) if areas.size else 0.0,
            "median": float(np.median(areas)) if areas.size else 0.0,
            "total": float(areas.sum()),
        },
        "pixel_size_um": pixel_size_um,
        "objects": [
            {k: clean(v) for k, v in row.items()} for row in table.slice(0, 1000).to_pylist()
        ],
        "truncated": table.num_rows > 1000,
    }


def answer_head(loaded: LoadedModel, source_id: str | None) -> dict[str, Any]:
    """What every JSON answer of a prediction starts with: the version that ran, the
    image it ran on and the drift state after the last counted image."""
    v = loaded.version
    return {
        "model": v.model,
        "version": v.version,
        "ref": v.ref,
        "image_id": source_id,
        "task": loaded.model.spec.task,
        "drift": loaded.drift_state,
    }
