"""The time-lapse dataset layout: multi-page TIFFs of frames with label stacks of the same
shape. Pure: bytes in, arrays out.

::

    images/a.tif   masks/a.tif     (T, H, W) frames; (T, H, W) masks, one page a frame
    images/b.tiff  masks/b.tiff

A mask stack is binary (0 = background, one foreground value) or instance labels (0 and
1..N, an object's id the same in every frame: the true tracks); label stacks train as
their foreground with a line between touching objects, frame by frame. Frames are grey
(colour frames are averaged to grey when trained). Every problem (a missing mask, a
single-page image, a mask with another number of frames or another frame size, a stack
that is not a TIFF) is reported with the others as one 422; sizes come from the TIFF
headers before any frame is decoded (per frame ``max_image_pixels``, all frames of all
sequences ``max_total_pixels``: 413).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from pixelmill.ml.dataset_limits import DatasetLimits, too_large

SUFFIXES = (".tif", ".tiff")
#: the member time of built archives (the earliest a zip can hold)
_EPOCH = (1980, 1, 1, 0, 0, 0)


class _Problems(Protocol):
    def add(self, file: str, problem: str) -> None: ...


def _stem(name: str) -> str:
    path = PurePosixPath(name)
    return str(path.with_suffix("").relative_to(path.parts[0]))


def _shape(blob: bytes) -> tuple[tuple[int, ...], str]:
    """The (T, H, W[, S]) shape of a TIFF's first series, from its headers; raises
    ValueError (not a TIFF, or not frames of one size)."""
    import tifffile

    if blob[:4] not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        raise ValueError("is not a TIFF (a time-lapse is a multi-page TIFF, one page a frame)")
    try:
        with tifffile.TiffFile(io.BytesIO(blob)) as tif:
            series = tif.series[0]
            shape, axes = tuple(int(d) for d in series.shape), str(series.axes)
    except Exception as exc:  # tifffile raises many kinds on damaged files
        raise ValueError("cannot be read as a TIFF") from exc
    kept = [(d, a) for d, a in zip(shape, axes, strict=False) if d > 1 or a in "YX"]
    dims = tuple(d for d, _ in kept)
    samples = bool(kept) and kept[-1][1] == "S"
    if len(dims) == 2:
        raise ValueError("has one frame: a time-lapse is a multi-page TIFF, one page a frame")
    if not (len(dims) == 3 and not samples) and not (len(dims) == 4 and samples):
        raise ValueError(
            f"has shape {list(shape)} (axes {axes}); expected frames (T, H, W), grey or colour"
        )
    return dims, axes


def check_headers(
    images: dict[str, bytes], problems: _Problems, refused: set[str], limits: DatasetLimits
) -> None:
    """Size every stack from its TIFF header before any frame is decoded (413/422)."""
    total = 0
    for name in sorted(images):
        try:
            dims, _ = _shape(images[name])
        except ValueError as exc:
            problems.add(name, str(exc))
            refused.add(name)
            continue
        frame = dims[1] * dims[2]
        if frame > limits.max_image_pixels:
            raise too_large(
                name,
                f"frames of {frame} pixels; at most {limits.max_image_pixels}",
                max_pixels=limits.max_image_pixels,
            )
        total += dims[0] * frame
        if total > limits.max_total_pixels:
            raise too_large("*", f"more than {limits.max_total_pixels} pixels in total")


def _read(blob: bytes) -> NDArray[Any]:
    import tifffile

    dims, _ = _shape(blob)
    return np.asarray(tifffile.imread(io.BytesIO(blob), series=0)).reshape(dims)


def items(
    images: dict[str, bytes], problems: _Problems, refused: set[str], make: Callable[..., Any]
) -> list[Any]:
    """The sequences of a time-lapse archive as ``make(name=, image=, mask=, labels=)``
    (a :class:`pixelmill.ml.datasets.Item`: ``image`` (T, H, W[, S]), ``mask`` (T, H, W)
    uint8 0/255, ``labels`` the label stack when the masks are instance labels)."""
    pics = {_stem(n): n for n in images if n.startswith("images/")}
    masks = {_stem(n): n for n in images if n.startswith("masks/")}
    for n in sorted(images):
        if not n.startswith(("images/", "masks/")):
            problems.add(n, "outside images/ and masks/")
        elif PurePosixPath(n).suffix.lower() not in SUFFIXES:
            problems.add(n, "a time-lapse is a multi-page TIFF (.tif, .tiff)")
    for stem in sorted(set(pics) - set(masks)):
        problems.add(pics[stem], f"has no mask stack (expected masks/{stem}.tif)")
    for stem in sorted(set(masks) - set(pics)):
        problems.add(masks[stem], "has no matching image in images/")
    out = []
    for stem in sorted(set(pics) & set(masks)):
        image_name, mask_name = pics[stem], masks[stem]
        if image_name in refused or mask_name in refused:
            continue
        try:
            frames, mask = _read(images[image_name]), _read(images[mask_name])
        except (ValueError, OSError) as exc:
            problems.add(image_name, f"cannot be decoded: {exc}")
            continue
        problem = _mask_problem(frames, mask)
        if problem is not None:
            problems.add(mask_name, problem)
            continue
        out.append(_item(make, stem, frames, mask.astype(np.int64)))
    return out


def _mask_problem(frames: NDArray[Any], mask: NDArray[Any]) -> str | None:
    if mask.ndim != 3:
        return "a mask stack has one grey page a frame; this one has colour pages"
    if mask.shape[0] != frames.shape[0]:
        return f"has {mask.shape[0]} frames but the image has {frames.shape[0]}"
    if mask.shape[1:3] != frames.shape[1:3]:
        rows, cols = frames.shape[1:3]
        return f"frames are {mask.shape[2]}x{mask.shape[1]} but the image's are {cols}x{rows}"
    if not np.issubdtype(mask.dtype, np.integer) or int(mask.min()) < 0:
        return "mask values must be integers from 0 (background)"
    values = np.unique(mask)
    if len(values) == 2 and values[0] != 0:
        return "the mask has no background 0 (expected 0 and one value, or labels 0, 1..N)"
    return None


def _item(make: Any, stem: str, frames: NDArray[Any], mask: NDArray[np.int64]) -> Any:
    if len(np.unique(mask)) <= 2:
        return make(name=stem, image=frames, mask=(mask > 0).astype(np.uint8) * 255)
    from pixelmill.ml.synthetic_timelapse import timelapse_masks

    binary = timelapse_masks(mask) * 255
    return make(name=stem, image=frames, mask=binary, labels=mask.astype(np.int32))


def summary(items: list[Any]) -> dict[str, Any]:
    """The part of a dataset's summary that differs for time-lapses: frames, frame sizes."""
    return {
        "channels": sorted({1 if i.image.ndim == 3 else int(i.image.shape[3]) for i in items}),
        "frames": sorted({int(i.image.shape[0]) for i in items}),
        "dtypes": sorted({str(i.image.dtype) for i in items}),
        "shapes": [list(s) for s in sorted({tuple(i.image.shape[1:3]) for i in items})[:20]],
    }


def build_archive(sequences: list[tuple[str, NDArray[Any], NDArray[Any]]]) -> bytes:
    """A time-lapse dataset zip from ``(stem, frames, masks)`` stacks (tests, the
    synthetic generator); the same arrays give the same bytes."""
    import tifffile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for stem, frames, masks in sequences:
            for folder, arr in (("images", frames), ("masks", masks)):
                sink = io.BytesIO()
                tifffile.imwrite(
                    sink, np.ascontiguousarray(arr), photometric="minisblack", compression="zlib"
                )
                member = zipfile.ZipInfo(f"{folder}/{stem}.tif", date_time=_EPOCH)
                member.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(member, sink.getvalue())
    return buf.getvalue()
