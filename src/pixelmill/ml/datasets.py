"""Training datasets: parse an archive of images + masks (or class folders), validate
it completely, and split it reproducibly. Pure: bytes in, arrays out.

Layouts (inside a zip; one wrapping top-level folder is allowed; the graph layout, a
segmentation dataset of label images plus ``cells.csv``, is in
:mod:`pixelmill.ml.graph_dataset`; the time-lapse layout, multi-page TIFFs of frames and
mask stacks, in :mod:`pixelmill.ml.sequence_dataset`)::

    segmentation                     classification
      images/a.png  masks/a.png        images/<class>/x.png   (or <class>/x.png)
      images/b.tif  masks/b.tif        images/<class>/y.png

Masks match images by file stem and are binary (two values at most, 0 = background) or
instance label images (0 = background, each object its own value 1..N; kept as
``Item.labels`` for evaluation, trained as foreground with a line between touching
objects).
Every problem found is reported together, naming the offending files, as one
:class:`~pixelmill.errors.InvalidDataset` (HTTP 422). Sizes are checked first, from the
zip and image headers (:mod:`pixelmill.ml.dataset_limits`): too much → 413.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from pixelmill.errors import InvalidDataset, PixelmillError
from pixelmill.ml.dataset_limits import (
    DatasetLimits,
    check_image,
    open_archive,
    read_member,
    too_large,
)
from pixelmill.ml.graph_dataset import CELLS_CSV, attach_classes
from pixelmill.ml.preprocess import decode

Task = Literal["segmentation", "classification", "graph", "timelapse"]
IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".webp", ".bmp", ".pgm", ".ppm"}


@dataclass
class Item:
    name: str
    image: NDArray[np.generic]
    mask: NDArray[np.uint8] | None = None
    label: int | None = None
    #: the instance labels of a label-image mask (0 = background, objects 1..N)
    labels: NDArray[np.int32] | None = None
    #: graph datasets: the class index of each label value (-1: none), from cells.csv
    cell_classes: NDArray[np.int64] | None = None


@dataclass
class Dataset:
    """A validated dataset. ``split`` maps "train"/"val" to item names."""

    task: Task
    items: list[Item]
    classes: list[str] = field(default_factory=list)
    split: dict[str, list[str]] = field(default_factory=dict)
    sha256: str = ""

    def subset(self, part: str) -> list[Item]:
        names = set(self.split.get(part, []))
        return [i for i in self.items if i.name in names]

    def summary(self) -> dict[str, Any]:
        shapes = {tuple(i.image.shape) for i in self.items}
        if self.task == "timelapse":
            from pixelmill.ml.sequence_dataset import summary

            return {**self._counts(), **summary(self.items)}
        return {
            **self._counts(),
            "channels": sorted(
                {1 if i.image.ndim == 2 else int(i.image.shape[2]) for i in self.items}
            ),
            "dtypes": sorted({str(i.image.dtype) for i in self.items}),
            "shapes": [list(s) for s in sorted(shapes)[:20]],
        }

    def _counts(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "items": len(self.items),
            "classes": self.classes,
            "train": len(self.split.get("train", [])),
            "val": len(self.split.get("val", [])),
        }


class _Problems:
    def __init__(self) -> None:
        self.entries: list[dict[str, str]] = []
        #: files refused from their header: never decoded
        self.refused: set[str] = set()

    def add(self, file: str, problem: str) -> None:
        self.entries.append({"file": file, "problem": problem})

    def raise_if_any(self, what: str) -> None:
        if self.entries:
            shown = "; ".join(f"{e['file']}: {e['problem']}" for e in self.entries[:5])
            more = f" (and {len(self.entries) - 5} more)" if len(self.entries) > 5 else ""
            raise InvalidDataset(f"{what}: {shown}{more}", files=self.entries[:200])


def _members(data: bytes, limits: DatasetLimits) -> dict[str, bytes]:
    archive, infos = open_archive(data, limits)
    files = {i.filename: read_member(archive, i, limits) for i in infos}
    # strip one wrapping folder ("mydata/images/a.png" -> "images/a.png")
    tops = {PurePosixPath(n).parts[0] for n in files}
    nested = [n for n in files if PurePosixPath(n).name != CELLS_CSV]
    if len(tops) == 1 and nested and all(len(PurePosixPath(n).parts) > 2 for n in nested):
        top = tops.pop()
        files = {n[len(top) + 1 :]: b for n, b in files.items()}
    return files


def detect_task(data: bytes) -> Task:
    """``graph`` when the archive has ``cells.csv``, ``segmentation`` when it has a
    ``masks/`` folder, else ``classification``."""
    return _task(list(_members(data, DatasetLimits())))


def _task(names: list[str]) -> Task:
    if CELLS_CSV in names:
        return "graph"
    return "segmentation" if any(n.startswith("masks/") for n in names) else "classification"


def _decode(name: str, blob: bytes, problems: _Problems) -> NDArray[np.generic] | None:
    if name in problems.refused:
        return None
    try:
        return decode(blob)
    except PixelmillError:
        problems.add(name, "cannot be decoded as an image")
        return None


def _stem(name: str) -> str:
    return str(PurePosixPath(name).with_suffix("").relative_to(PurePosixPath(name).parts[0]))


def parse(
    data: bytes,
    *,
    task: Task | None = None,
    val_fraction: float = 0.15,
    seed: int = 0,
    limits: DatasetLimits | None = None,
) -> Dataset:
    """Parse and fully validate a dataset archive, then split it (see module docs).

    ``limits`` (default :class:`DatasetLimits`) are checked from the zip and image
    headers before anything is decoded: too many or too large files or pixels → 413."""
    limits = limits or DatasetLimits()
    files = _members(data, limits)
    task = task or _task(list(files))
    problems = _Problems()
    images = {n: b for n, b in files.items() if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES}
    table = files.get(CELLS_CSV) if task == "graph" else None
    for n in sorted(set(files) - set(images) - ({CELLS_CSV} if task == "graph" else set())):
        problems.add(n, "not an image file (expected " + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    if task == "timelapse":
        from pixelmill.ml import sequence_dataset as seq

        seq.check_headers(images, problems, problems.refused, limits)
        items = [("", it) for it in seq.items(images, problems, problems.refused, Item)]
    else:
        _check_headers(images, problems, limits)
        items = (
            _classification(images, problems)
            if task == "classification"
            else _segmentation(images, problems)
        )
    classes = sorted({c for c, _ in items}) if task == "classification" else []
    dataset_items = [it for _, it in items]
    if task == "graph":
        classes = attach_classes(dataset_items, table, problems)
    if task == "classification":
        for cls, it in items:
            it.label = classes.index(cls)
    if not dataset_items and not problems.entries:
        raise InvalidDataset(
            "the dataset is empty: no images found"
            + (
                " (expected images/ and masks/ folders)"
                if task != "classification"
                else " (expected images/<class>/ folders)"
            ),
            files=[],
        )
    if task != "timelapse":
        _check_channels(dataset_items, problems)
    if task == "classification" and len(classes) < 2 and dataset_items:
        problems.add("images/", f"classification needs at least 2 classes, found {classes}")
    problems.raise_if_any("the dataset is invalid")
    ds = Dataset(
        task=task, items=dataset_items, classes=classes, sha256=hashlib.sha256(data).hexdigest()
    )
    ds.split = split_names([i.name for i in dataset_items], val_fraction=val_fraction, seed=seed)
    return ds


def _check_headers(images: dict[str, bytes], problems: _Problems, limits: DatasetLimits) -> None:
    """Sniff and size every image from its header before any is decoded (413/422)."""
    total = 0
    for name in sorted(images):
        pixels, problem = check_image(name, images[name], limits)
        if problem is not None:
            problems.add(name, problem)
            problems.refused.add(name)
        total += pixels
        if total > limits.max_total_pixels:
            raise too_large("*", f"more than {limits.max_total_pixels} pixels in total")


def _segmentation(images: dict[str, bytes], problems: _Problems) -> list[tuple[str, Item]]:
    pics = {_stem(n): n for n in images if n.startswith("images/")}
    masks = {_stem(n): n for n in images if n.startswith("masks/")}
    for n in images:
        if not n.startswith(("images/", "masks/")):
            problems.add(n, "outside images/ and masks/")
    for stem in sorted(set(pics) - set(masks)):
        problems.add(pics[stem], f"has no mask (expected masks/{stem}.png)")
    for stem in sorted(set(masks) - set(pics)):
        problems.add(masks[stem], "has no matching image in images/")
    out: list[tuple[str, Item]] = []
    for stem in sorted(set(pics) & set(masks)):
        image = _decode(pics[stem], images[pics[stem]], problems)
        mask = _decode(masks[stem], images[masks[stem]], problems)
        if image is None or mask is None:
            continue
        if mask.ndim == 3:
            bands = mask[..., : 3 if mask.shape[2] >= 3 else 1]
            if not all(np.array_equal(bands[..., 0], bands[..., k]) for k in range(bands.shape[2])):
                problems.add(
                    masks[stem], f"mask has {mask.shape[2]} differing channels; expected 1"
                )
                continue
            mask = bands[..., 0]
        if mask.shape[:2] != image.shape[:2]:
            problems.add(
                masks[stem],
                f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {image.shape[1]}x{image.shape[0]}",
            )
            continue
        values = np.unique(np.asarray(mask, dtype=np.int64))
        if (len(values) == 2 and values[0] != 0) or values[0] < 0:
            problems.add(
                masks[stem],
                f"mask has {len(values)} values and no background 0 (expected 0 and one "
                "foreground value, or an instance label image: 0 and 1..N)",
            )
            continue
        out.append((stem, _mask_item(stem, image, np.asarray(mask, dtype=np.int64))))
    return out


def _mask_item(stem: str, image: NDArray[np.generic], mask: NDArray[np.int64]) -> Item:
    """A binary mask as it is; an instance label image (more than two values) is kept
    as ``labels`` and trains as its foreground with a line between touching objects
    (:func:`pixelmill.ml.synthetic.separate_touching`), as the shipped model was."""
    if len(np.unique(mask)) <= 2:
        return Item(name=stem, image=image, mask=(mask > 0).astype(np.uint8) * 255)
    from pixelmill.ml.synthetic import separate_touching

    binary = separate_touching(mask).astype(np.uint8) * 255
    return Item(name=stem, image=image, mask=binary, labels=mask.astype(np.int32))


def _classification(images: dict[str, bytes], problems: _Problems) -> list[tuple[str, Item]]:
    out: list[tuple[str, Item]] = []
    for n in sorted(images):
        parts = PurePosixPath(n).parts
        if parts[0] == "images":
            parts = parts[1:]
        if len(parts) != 2:
            problems.add(n, "expected images/<class>/<file>")
            continue
        image = _decode(n, images[n], problems)
        if image is not None:
            out.append(
                (parts[0], Item(name=f"{parts[0]}/{PurePosixPath(parts[1]).stem}", image=image))
            )
    return out


def _check_channels(items: list[Item], problems: _Problems) -> None:
    def bands(it: Item) -> int:
        return 1 if it.image.ndim == 2 else int(it.image.shape[2])

    counts: dict[int, list[str]] = {}
    for it in items:
        counts.setdefault(bands(it), []).append(it.name)
    if len(counts) > 1:
        majority = max(counts, key=lambda k: len(counts[k]))
        for k, names in counts.items():
            if k != majority:
                for name in names[:50]:
                    problems.add(name, f"has {k} channel(s) but most images have {majority}")
    for it in items:
        if bands(it) > 4:
            problems.add(it.name, f"has {bands(it)} channels; at most 4 are supported")


def split_names(names: list[str], *, val_fraction: float, seed: int) -> dict[str, list[str]]:
    """A reproducible train/val split: a seeded permutation of the sorted names."""
    ordered = sorted(names)
    rng = np.random.default_rng(seed)
    perm = [ordered[i] for i in rng.permutation(len(ordered))]
    n_val = round(len(ordered) * val_fraction)
    if val_fraction > 0 and len(ordered) >= 2:
        n_val = max(1, min(n_val, len(ordered) - 1))
    return {"train": sorted(perm[n_val:]), "val": sorted(perm[:n_val])}


#: the member time of built archives (the earliest a zip can hold)
_EPOCH = (1980, 1, 1, 0, 0, 0)


def build_archive(
    pairs: list[tuple[str, NDArray[np.generic], NDArray[np.generic]]], *, fmt: str = ".png"
) -> bytes:
    """A segmentation zip from ``(stem, image, mask)`` arrays (tests, synthetic data,
    study annotations). The same arrays give the same bytes (fixed member times), so the
    dataset store recognises a rebuild as the dataset it already holds."""
    import pyvips

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for stem, image, mask in pairs:
            for folder, arr in (("images", image), ("masks", mask)):
                vips = pyvips.Image.new_from_array(np.ascontiguousarray(arr))
                if arr.dtype == np.uint16:  # keep 16 bits in PNG/TIFF
                    vips = vips.copy(interpretation="grey16")
                member = zipfile.ZipInfo(f"{folder}/{stem}{fmt}", date_time=_EPOCH)
                member.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(member, bytes(vips.write_to_buffer(fmt)))
    return buf.getvalue()


def build_graph_archive(
    samples: Sequence[tuple[str, NDArray[np.generic], NDArray[np.integer], dict[int, str]]],
) -> bytes:
    """A graph dataset zip from ``(stem, image, labels, {label: class})`` (tests,
    synthetic tissue): the segmentation archive of the label images (16-bit) plus
    ``cells.csv``."""
    base = build_archive([(s, image, labels.astype(np.uint16)) for s, image, labels, _ in samples])
    lines = ["image,label,class"]
    for stem, _, _, classes in samples:
        lines += [f"{stem},{label},{cls}" for label, cls in sorted(classes.items())]
    buf = io.BytesIO(base)
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as archive:
        member = zipfile.ZipInfo(CELLS_CSV, date_time=_EPOCH)
        member.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(member, "\n".join(lines) + "\n")
    return buf.getvalue()
