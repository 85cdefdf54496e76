"""The place on an image a discussion is pinned to: a viewport or a GeoJSON geometry.

A viewport is ``{"x", "y", "w", "h"}`` in level-0 pixels (``x`` to the right, ``y``
down, origin top-left), optionally with the ``zoom`` the viewer showed it at. A
geometry is any annotation geometry (:data:`~.annotations.GEOMETRY_TYPES`), checked by
the annotation rules. Both must lie inside the image when its size is known.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pixelmill.errors import InvalidParameter

#: a pinned geometry is a marker, not a segmentation: keep it small
MAX_REGION_VERTICES = 10_000
_VIEWPORT_KEYS = frozenset({"x", "y", "w", "h", "zoom"})


def check_region(region: Any, image_size: tuple[int, int] | None) -> dict[str, Any]:
    """A checked copy of ``region`` (a viewport or a GeoJSON geometry mapping).

    ``image_size`` is ``(width, height)`` in pixels. Raises
    :class:`~pixelmill.errors.InvalidParameter` (or ``InvalidAnnotation`` for a bad
    geometry) naming the problem."""
    if not isinstance(region, Mapping):
        raise InvalidParameter("region must be an object: {x, y, w, h} or a GeoJSON geometry")
    if "type" in region:
        from pixelmill.imaging.annotations import Limits, check_geometry

        limits = Limits(max_vertices=MAX_REGION_VERTICES, image_size=image_size)
        return check_geometry(dict(region), limits)
    return _viewport(region, image_size)


def _viewport(region: Mapping[str, Any], image_size: tuple[int, int] | None) -> dict[str, Any]:
    unknown = set(region) - _VIEWPORT_KEYS
    if unknown:
        raise InvalidParameter(
            f"a viewport region has x, y, w, h (and zoom), not {sorted(unknown)}"
        )
    out: dict[str, Any] = {}
    for key in ("x", "y", "w", "h", "zoom"):
        value = region.get(key)
        if value is None and key == "zoom":
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidParameter(f"region.{key} must be a finite number", parameter=key)
        out[key] = value
    if out["x"] < 0 or out["y"] < 0:
        raise InvalidParameter("region.x and region.y must be >= 0")
    if out["w"] <= 0 or out["h"] <= 0 or out.get("zoom", 1) <= 0:
        raise InvalidParameter("region.w, region.h (and zoom) must be > 0")
    if image_size is not None:
        width, height = image_size
        if out["x"] + out["w"] > width or out["y"] + out["h"] > height:
            raise InvalidParameter(f"the region ends outside the image ({width} x {height} pixels)")
    return out
