"""Per-image results of a segmentation: additive counters (tiles of a slide are tallied
and merged) and the summary built from them: object count, density per mm², object area
fraction, size statistics, and for IHC the DAB class counts, H-score, labelling index and
DAB-positive area fraction.

Areas are in pixels (and µm² / mm² when the pixel size is known, else null); optical
densities (OD) are in absorbance units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pixelmill.errors import InvalidParameter

if TYPE_CHECKING:
    import pyarrow as pa

#: QuPath's default nucleus DAB OD thresholds for 1+, 2+ and 3+
DAB_THRESHOLDS = (0.2, 0.4, 0.6)
#: mean RGB optical density above which a pixel counts as tissue (not glass)
TISSUE_OD = 0.08
#: DAB optical density above which a pixel counts as DAB-positive
DAB_PIXEL_OD = 0.2


def dab_classes(dab_mean: np.ndarray, thresholds: Sequence[float] = DAB_THRESHOLDS) -> np.ndarray:
    """Intensity class per object from its mean DAB OD: 0 = negative, 1..3 = 1+..3+
    (with one threshold: 0 negative, 1 positive). int8."""
    t = np.asarray(sorted(thresholds), float)
    if t.size not in (1, 3):
        raise InvalidParameter("give one DAB threshold, or three (1+, 2+, 3+)")
    return np.searchsorted(t, np.asarray(dab_mean, float), side="right").astype(np.int8)


@dataclass
class Tally:
    """Additive per-image counters (tiles of a slide are tallied and merged).

    ``pixels``: image area counted; ``object_pixels``: pixels inside objects;
    ``classes``: objects per DAB class (negative, 1+, 2+, 3+); ``tissue_pixels`` and
    ``dab_pixels``: brightfield tissue and DAB-positive pixels (None if not measured).
    """

    pixels: int = 0
    object_pixels: int = 0
    areas: list[np.ndarray] = field(default_factory=list)
    classes: np.ndarray | None = None
    tissue_pixels: int | None = None
    dab_pixels: int | None = None
    tissue_od: float = TISSUE_OD
    dab_pixel_od: float = DAB_PIXEL_OD

    def add(self, other: Tally) -> None:
        self.pixels += other.pixels
        self.object_pixels += other.object_pixels
        self.areas.extend(other.areas)
        if other.classes is not None:
            self.classes = other.classes if self.classes is None else self.classes + other.classes
        if other.tissue_pixels is not None:
            self.tissue_pixels = (self.tissue_pixels or 0) + other.tissue_pixels
            self.dab_pixels = (self.dab_pixels or 0) + (other.dab_pixels or 0)


def tally(
    labels: np.ndarray | None,
    *,
    objects: pa.Table | None = None,
    dab_od: np.ndarray | None = None,
    total_od: np.ndarray | None = None,
    dab_column: str | None = None,
    thresholds: Sequence[float] = DAB_THRESHOLDS,
    tissue_od: float = TISSUE_OD,
    dab_pixel_od: float = DAB_PIXEL_OD,
    shape: tuple[int, int] | None = None,
) -> Tally:
    """Counters of one image (or one tile core).

    ``labels`` (or ``shape`` when there are none) gives the area; ``objects`` the areas
    and, with ``dab_column`` (e.g. ``"dab_od_mean"``), the DAB class of each object;
    ``dab_od`` and ``total_od`` (float (H, W) OD maps) the tissue and DAB-positive pixel
    counts. Pass only the pixels this image owns (a tile's core), so sums never double.
    """
    size = labels.shape if labels is not None else shape
    if size is None:
        raise InvalidParameter("tally needs labels or a shape")
    t = Tally(pixels=int(size[0]) * int(size[1]), tissue_od=tissue_od, dab_pixel_od=dab_pixel_od)
    if labels is not None:
        t.object_pixels = int(np.count_nonzero(labels))
    if objects is not None and objects.num_rows:
        t.areas.append(objects.column("area_px").to_numpy().astype(np.int64))
        if dab_column is not None:
            classes = dab_classes(objects.column(dab_column).to_numpy(), thresholds)
            top = 4 if len(thresholds) == 3 else 2
            t.classes = np.bincount(classes, minlength=top)[:top].astype(np.int64)
    elif dab_column is not None:
        t.classes = np.zeros(4 if len(thresholds) == 3 else 2, np.int64)
    if dab_od is not None and total_od is not None:
        tissue = total_od > tissue_od
        t.tissue_pixels = int(np.count_nonzero(tissue))
        t.dab_pixels = int(np.count_nonzero(tissue & (dab_od > dab_pixel_od)))
    return t


def summarize(
    t: Tally,
    *,
    pixel_size_um: float | None = None,
    thresholds: Sequence[float] = DAB_THRESHOLDS,
) -> dict[str, Any]:
    """The per-image summary (JSON-safe dict) of a :class:`Tally`.

    Keys: ``object_count``; ``image_area_px``/``image_area_mm2``; ``pixel_size_um``;
    ``density_per_mm2`` (objects per mm² of image); ``object_area_fraction`` (0..1);
    ``mean_area_px``/``median_area_px`` and their ``_um2``; and ``ihc`` when DAB was
    measured: class counts, ``positive_count``, ``labelling_index_pct`` (positive nuclei
    %), ``h_score`` (0..300), ``tissue_area_fraction`` and ``dab_positive_area_fraction``
    (of tissue). µm-based values are None when the pixel size is unknown.
    """
    areas = np.concatenate(t.areas) if t.areas else np.zeros(0, np.int64)
    count = len(areas)
    mm2 = None if pixel_size_um is None else t.pixels * (pixel_size_um / 1000.0) ** 2
    um2 = None if pixel_size_um is None else pixel_size_um**2

    def f(value: float | None, digits: int = 6) -> float | None:
        return None if value is None or not np.isfinite(value) else round(float(value), digits)

    out: dict[str, Any] = {
        "object_count": count,
        "image_area_px": t.pixels,
        "image_area_mm2": f(mm2),
        "pixel_size_um": pixel_size_um,
        "density_per_mm2": f(count / mm2 if mm2 else None, 3),
        "object_area_fraction": f(t.object_pixels / t.pixels if t.pixels else 0.0),
        "mean_area_px": f(areas.mean(), 3) if count else None,
        "median_area_px": f(float(np.median(areas)), 3) if count else None,
        "mean_area_um2": f(areas.mean() * um2, 3) if count and um2 else None,
        "median_area_um2": f(float(np.median(areas)) * um2, 3) if count and um2 else None,
    }
    if t.classes is not None or t.tissue_pixels is not None:
        ihc: dict[str, Any] = {"dab_thresholds_od": list(thresholds)}
        if t.classes is not None:
            classes = [int(v) for v in t.classes]
            positive = sum(classes[1:])
            total = sum(classes)
            ihc["negative"] = classes[0]
            if len(classes) == 4:
                ihc.update({"1+": classes[1], "2+": classes[2], "3+": classes[3]})
                score = (
                    (classes[1] + 2 * classes[2] + 3 * classes[3]) / total * 100 if total else 0.0
                )
                ihc["h_score"] = f(score, 3)
            ihc["positive_count"] = positive
            ihc["labelling_index_pct"] = f(positive / total * 100 if total else 0.0, 3)
        if t.tissue_pixels is not None:
            ihc["tissue_od_threshold"] = t.tissue_od
            ihc["dab_pixel_od_threshold"] = t.dab_pixel_od
            ihc["tissue_area_fraction"] = f(t.tissue_pixels / t.pixels if t.pixels else 0.0)
            ihc["dab_positive_area_fraction"] = f(
                (t.dab_pixels or 0) / t.tissue_pixels if t.tissue_pixels else 0.0
            )
        out["ihc"] = ihc
    return out


__all__ = [
    "DAB_PIXEL_OD",
    "DAB_THRESHOLDS",
    "TISSUE_OD",
    "Tally",
    "dab_classes",
    "summarize",
    "tally",
]
