"""Annotations of an image: GeoJSON (QuPath's flavour) in and out, checks, measurements
and the difference between two versions. Pure: no I/O, JSON text or objects in and out.

==============  ===============================================================
module          what it holds
==============  ===============================================================
``geojson``     :class:`Annotation`, :func:`parse_geojson`, :func:`to_feature`,
                :func:`to_feature_collection`
``measure``     shape measurements from the geometry; intensities of the pixels
                an annotation covers, through ``imaging.analysis.measure``
``diff``        :func:`diff` of two versions, for the history
==============  ===============================================================
"""

from __future__ import annotations

from pixelmill.imaging.annotations._geometry import GEOMETRY_TYPES, Limits, check_geometry
from pixelmill.imaging.annotations.diff import Change, diff
from pixelmill.imaging.annotations.geojson import (
    MAX_DEPTH,
    OBJECT_TYPES,
    Annotation,
    check_depth,
    parse_feature,
    parse_geojson,
    to_feature,
    to_feature_collection,
)
from pixelmill.imaging.annotations.measure import (
    annotation_mask,
    geometry_measurements,
    intensity_measurements,
    with_pixel_size,
)

__all__ = [
    "GEOMETRY_TYPES",
    "MAX_DEPTH",
    "OBJECT_TYPES",
    "Annotation",
    "Change",
    "Limits",
    "annotation_mask",
    "check_depth",
    "check_geometry",
    "diff",
    "geometry_measurements",
    "intensity_measurements",
    "parse_feature",
    "parse_geojson",
    "to_feature",
    "to_feature_collection",
    "with_pixel_size",
]
