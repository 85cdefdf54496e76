"""Measurements of an annotation: its shape from the geometry alone, and intensities of
the pixels it covers through the object measurement of :mod:`pixelmill.imaging.analysis`.

Geometry measurements are exact (shapely on the polygon, not a raster): ``area_px``
(px²), ``perimeter_px``, ``length_px`` of a line, ``point_count``, the centroid
``centroid_x``/``centroid_y`` and the box ``bbox_min_x``... in pixels; with a pixel size
also ``area_um2``, ``perimeter_um`` and ``length_um``.

Intensity measurements rasterise the polygon onto a region of the image (a pixel counts
when its centre lies inside) and measure that one-object label image with
:func:`~pixelmill.imaging.analysis.measure.measure_objects`: ``pixel_count`` and, per
channel, ``mean_intensity_{name}``, ``max_intensity_{name}``,
``integrated_intensity_{name}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pixelmill.errors import InvalidParameter
from pixelmill.imaging.annotations._geometry import bounds
from pixelmill.imaging.annotations.geojson import Annotation

_POLYGONAL = ("Polygon", "MultiPolygon")


def geometry_measurements(
    annotation: Annotation | Mapping[str, Any], *, pixel_size_um: float | None = None
) -> dict[str, float | int | None]:
    """Shape measurements of an annotation (or of a checked GeoJSON geometry).

    >>> square = {"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 2], [0, 2], [0, 0]]]}
    >>> geometry_measurements(square, pixel_size_um=0.5)["area_um2"]
    2.0
    """
    from shapely.geometry import shape

    geometry = annotation.geometry if isinstance(annotation, Annotation) else annotation
    geom = shape(geometry)
    kind = geometry["type"]
    min_x, min_y, max_x, max_y = bounds(geometry)
    out: dict[str, float | int | None] = {}
    if kind in _POLYGONAL:
        out["area_px"] = geom.area
        out["perimeter_px"] = geom.length
        out["area_um2"] = _um(geom.area, pixel_size_um, 2)
        out["perimeter_um"] = _um(geom.length, pixel_size_um)
    elif kind == "LineString":
        out["length_px"] = geom.length
        out["length_um"] = _um(geom.length, pixel_size_um)
    else:
        out["point_count"] = 1 if kind == "Point" else len(geometry["coordinates"])
    centroid = geom.centroid
    out.update(
        centroid_x=centroid.x,
        centroid_y=centroid.y,
        bbox_min_x=min_x,
        bbox_min_y=min_y,
        bbox_max_x=max_x,
        bbox_max_y=max_y,
    )
    return out


def annotation_mask(
    annotation: Annotation | Mapping[str, Any],
    shape: tuple[int, int],
    *,
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Boolean (rows, cols) mask of the pixels whose centres lie inside the polygon(s).

    ``origin`` is the ``(row, col)`` of the mask's top-left pixel in the image, so a
    region read at ``(r0, c0)`` is masked with ``origin=(r0, c0)``. Holes are honoured.
    """
    from skimage.draw import polygon as fill

    geometry = annotation.geometry if isinstance(annotation, Annotation) else annotation
    if geometry["type"] not in _POLYGONAL:
        raise InvalidParameter(
            f"a {geometry['type']} covers no area; intensities need a polygon",
            geometry_type=geometry["type"],
        )
    polygons = (
        [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    )
    r0, c0 = origin
    mask = np.zeros(shape, bool)
    for rings in polygons:
        part = np.zeros(shape, bool)
        for i, ring in enumerate(rings):
            xy = np.asarray(ring, np.float64)
            # pixel (r, c) covers [c, c+1) x [r, r+1): its centre is at (c + 0.5, r + 0.5)
            rr, cc = fill(xy[:, 1] - r0 - 0.5, xy[:, 0] - c0 - 0.5, shape=shape)
            part[rr, cc] = i == 0  # exterior fills, holes clear
        mask |= part
    return mask


def intensity_measurements(
    region: np.ndarray,
    annotation: Annotation | Mapping[str, Any],
    *,
    origin: tuple[int, int] = (0, 0),
    pixel_size_um: float | None = None,
    channel_names: Sequence[str] | None = None,
) -> dict[str, float | int | None]:
    """Intensities of ``region``'s pixels inside the annotation.

    ``region`` is (rows, cols) or (rows, cols, channels) of any dtype, read from the
    image at ``origin`` = ``(row, col)``; values stay in the image's own units. Raises
    :class:`~pixelmill.errors.InvalidParameter` when no pixel centre of the region lies
    inside the annotation.
    """
    from pixelmill.imaging.analysis.measure import measure_objects

    if region.ndim not in (2, 3):
        raise InvalidParameter("region must be (rows, cols) or (rows, cols, channels)")
    mask = annotation_mask(annotation, region.shape[:2], origin=origin)
    if not mask.any():
        raise InvalidParameter(
            "the annotation covers no pixel centre of the region", origin=list(origin)
        )
    table = measure_objects(
        mask.astype(np.uint8),
        region,
        pixel_size_um=pixel_size_um,
        channel_names=channel_names,
        offset=origin,
    )
    row = table.to_pylist()[0]
    out: dict[str, float | int | None] = {"pixel_count": int(row["area_px"])}
    out.update((k, v) for k, v in row.items() if "intensity" in k)
    return out


def _um(value: float, pixel_size_um: float | None, power: int = 1) -> float | None:
    return None if pixel_size_um is None else value * pixel_size_um**power


#: the physical shape measurements and the pixel ones they are computed from
_PHYSICAL = {
    "area_um2": ("area_px", 2),
    "perimeter_um": ("perimeter_px", 1),
    "length_um": ("length_px", 1),
}


def with_pixel_size(measurements: Mapping[str, Any], pixel_size_um: float | None) -> dict[str, Any]:
    """``measurements`` (of :func:`geometry_measurements`) for another pixel size: the
    µm values computed again from the pixel values, as a new measurement would give.

    >>> with_pixel_size({"area_px": 8.0, "area_um2": 2.0, "perimeter_px": 12.0}, 1.0)
    {'area_px': 8.0, 'area_um2': 8.0, 'perimeter_px': 12.0, 'perimeter_um': 12.0}
    """
    out = dict(measurements)
    for um, (px, power) in _PHYSICAL.items():
        if isinstance(out.get(px), (int, float)):
            out[um] = _um(out[px], pixel_size_um, power)
    return out


__all__ = ["annotation_mask", "geometry_measurements", "intensity_measurements", "with_pixel_size"]
