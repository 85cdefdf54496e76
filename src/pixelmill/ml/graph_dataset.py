"""The graph dataset layout: a segmentation dataset of instance label images plus a
table of cell classes. Pure: bytes in, arrays out.

::

    images/a.png   masks/a.png   (instance labels: 0 = background, 1..N objects)
    images/b.tif   masks/b.tif
    cells.csv      image,label,class
                   a,1,tumour
                   a,2,stroma
                   b,7,tumour

``image`` is the file stem (``a``, or ``images/a.png``), ``label`` the object's value in
the mask, ``class`` any name. Objects without a row are cells of the graph without a
class (context for their neighbours, no loss). Every problem (an unknown image, a label
the mask does not have, a repeated cell, a missing column, fewer than two classes) is
reported with the others as one 422.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

#: the name of the class table at the archive's top
CELLS_CSV = "cells.csv"
COLUMNS = ("image", "label", "class")


class _Problems(Protocol):
    def add(self, file: str, problem: str) -> None: ...


class Item(Protocol):
    """What this module reads and sets of a dataset item
    (:class:`pixelmill.ml.datasets.Item`)."""

    name: str
    mask: NDArray[np.uint8] | None
    labels: NDArray[np.int32] | None
    cell_classes: NDArray[np.int64] | None


def _stem(value: str) -> str:
    path = PurePosixPath(value.strip())
    if path.parts and path.parts[0] == "images":
        path = PurePosixPath(*path.parts[1:])
    return str(path.with_suffix("")) if path.suffix else str(path)


def attach_classes(items: Sequence[Item], table: bytes | None, problems: _Problems) -> list[str]:
    """Give every item ``labels`` (its instance labels) and ``cell_classes`` (per label
    value, the class index, -1 where none) from ``cells.csv``; return the class names
    (sorted). Problems are added to ``problems``."""
    for it in items:
        if it.labels is None and it.mask is not None:  # a one-object mask: object 1
            it.labels = (it.mask > 0).astype(np.int32)
    if table is None:
        problems.add(CELLS_CSV, "missing: a graph dataset needs cells.csv (image,label,class)")
        return []
    rows = _rows(table, problems)
    by_name = {it.name: it for it in items}
    classes = sorted({cls for _, _, cls in rows})
    tables = {
        it.name: np.full(int(it.labels.max()) + 1 if it.labels is not None else 1, -1, np.int64)
        for it in items
    }
    objects = {it.name: _objects(it) for it in items}
    for line, (image, label, cls) in enumerate(rows, start=2):
        where = f"{CELLS_CSV}:{line}"
        item = by_name.get(image)
        if item is None:
            problems.add(where, f"names image {image!r}, which is not in images/")
            continue
        present = tables[image]
        if label <= 0 or label >= len(present) or not objects[image][label]:
            problems.add(where, f"label {label} is not an object of masks/{image}")
            continue
        if present[label] >= 0:
            problems.add(where, f"cell {label} of {image!r} is listed twice")
            continue
        present[label] = classes.index(cls)
    for it in items:
        it.cell_classes = tables[it.name]
    if rows and len(classes) < 2:
        problems.add(CELLS_CSV, f"a graph dataset needs at least 2 classes, found {classes}")
    return classes


def _objects(item: Item) -> np.ndarray:
    """Per label value, whether the mask has that object."""
    if item.labels is None:
        return np.zeros(1, bool)
    present = np.zeros(int(item.labels.max()) + 1, bool)
    present[np.unique(item.labels)] = True
    present[0] = False
    return present


def _rows(table: bytes, problems: _Problems) -> list[tuple[str, int, str]]:
    try:
        text = table.decode("utf-8-sig")
    except UnicodeDecodeError:
        problems.add(CELLS_CSV, "is not UTF-8 text")
        return []
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if header[:3] != list(COLUMNS):
        problems.add(CELLS_CSV, f"the header must be {','.join(COLUMNS)}, not {','.join(header)}")
        return []
    out = []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < 3 or not row[2].strip():
            problems.add(f"{CELLS_CSV}:{line}", "expected image,label,class")
            continue
        try:
            label = int(row[1])
        except ValueError:
            problems.add(f"{CELLS_CSV}:{line}", f"label {row[1]!r} is not an integer")
            continue
        out.append((_stem(row[0]), label, row[2].strip()))
    if not out:
        problems.add(CELLS_CSV, "has no cells")
    return out
