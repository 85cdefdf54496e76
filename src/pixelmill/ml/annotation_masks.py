"""Instance label masks from polygon annotations, for training datasets built from a
study's annotations. Pure: geometries in, arrays out.

Each polygon (or multipolygon) becomes one object: pixels whose centres lie inside it
(:func:`pixelmill.imaging.annotations.annotation_mask`, holes honoured) get its label,
1..N in the order given; where two overlap, the later one wins (as a later stroke lies
on top in the viewer).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pixelmill.imaging.annotations import annotation_mask
from pixelmill.imaging.annotations._geometry import bounds

POLYGONAL = frozenset({"Polygon", "MultiPolygon"})


def label_mask(
    geometries: Sequence[Mapping[str, Any]], shape: tuple[int, int]
) -> NDArray[np.int32]:
    """An int32 (rows, cols) label image: 0 background, object ``i + 1`` where
    ``geometries[i]`` covers a pixel centre. Non-polygonal geometries are skipped
    (their label stays unused, so labels follow the input's order).

    >>> square = {"type": "Polygon", "coordinates": [[[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]]}
    >>> label_mask([square], (4, 4)).tolist()
    [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    """
    rows, cols = shape
    labels = np.zeros((rows, cols), np.int32)
    for index, geometry in enumerate(geometries):
        if geometry.get("type") not in POLYGONAL:
            continue
        min_x, min_y, max_x, max_y = bounds(geometry)
        r0, c0 = max(math.floor(min_y), 0), max(math.floor(min_x), 0)
        r1, c1 = min(math.ceil(max_y) + 1, rows), min(math.ceil(max_x) + 1, cols)
        if r1 <= r0 or c1 <= c0:
            continue
        # rasterise only the polygon's box: a nucleus is tiny next to its image
        inside = annotation_mask(geometry, (r1 - r0, c1 - c0), origin=(r0, c0))
        labels[r0:r1, c0:c1][inside] = index + 1
    return labels


def relabel(labels: NDArray[np.integer]) -> NDArray[np.uint16]:
    """``labels`` with its objects numbered 1..N without gaps, as uint16 (PNG-safe);
    objects wholly covered by later ones disappear."""
    values = np.unique(labels)
    values = values[values > 0]
    if values.size > np.iinfo(np.uint16).max:
        raise ValueError(f"{values.size} objects do not fit a 16-bit label image")
    lut = np.zeros(int(labels.max(initial=0)) + 1, np.uint16)
    lut[values] = np.arange(1, values.size + 1, dtype=np.uint16)
    return lut[labels]
