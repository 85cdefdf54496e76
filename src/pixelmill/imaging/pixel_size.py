"""The physical pixel size of an image, in micrometres, from what its file says.

Three sources, most specific first:

1. OME-XML (OME-TIFF ``ImageDescription``): ``PhysicalSizeX`` of the first ``Pixels``
   element in its ``PhysicalSizeXUnit`` (µm when the attribute is absent).
2. Aperio SVS ``ImageDescription``: the ``MPP = 0.499`` field (µm per pixel).
3. TIFF ``XResolution`` / ``ResolutionUnit`` (libvips exposes them as ``xres`` in pixels
   per millimetre and ``resolution-unit``). Only a resolution with a real unit counts,
   and the values that software writes when it knows nothing (libvips' own 1 px/mm in
   any unit — 10 px/cm or 25.4 dpi —, 72 and 96 dpi) are ignored: a photo is not a
   353 µm/px microscope image, nor a libvips result a 1000 µm/px one.

Nothing is ever guessed: without one of these the pixel size is ``None``.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: micrometres per one of each OME length unit (the OME ``UnitsLength`` symbols)
_OME_UNITS_UM = {
    "pm": 1e-6,
    "Å": 1e-4,
    "nm": 1e-3,
    "µm": 1.0,
    "um": 1.0,
    "μm": 1.0,  # GREEK SMALL LETTER MU, which some writers use for MICRO SIGN
    "mm": 1e3,
    "cm": 1e4,
    "dm": 1e5,
    "m": 1e6,
}
_OME_PIXELS = re.compile(r"<(?:[\w.-]+:)?Pixels\b([^>]*)>")
_XML_ATTR = re.compile(r"([\w:.-]+)\s*=\s*\"([^\"]*)\"")
_APERIO_MPP = re.compile(r"\|\s*MPP\s*=\s*([0-9.eE+-]+)")
#: the resolution libvips gives an image that has none (1 px/mm), whatever the unit
#: it is written in (10 px/cm, 25.4 dpi): never a measurement
LIBVIPS_DEFAULT_PX_PER_MM = 1.0
#: resolutions (dots per inch) written by default, not measured
_DEFAULT_DPI = (72.0, 96.0)


def pixel_size_from_description(description: str) -> float | None:
    """µm per pixel from an OME-XML or Aperio ``ImageDescription``, else ``None``.

    >>> pixel_size_from_description("Aperio Image Library v12.0.15 \\n46000x32914|MPP = 0.499|")
    0.499
    """
    if not description:
        return None
    if "<OME" in description or "PhysicalSizeX" in description:
        size = _ome_pixel_size(description)
        if size is not None:
            return size
    if description.startswith("Aperio"):
        match = _APERIO_MPP.search(description)
        if match:
            return _positive(match.group(1))
    return None


def pixel_size_from_resolution(xres_px_per_mm: float, unit: str | None) -> float | None:
    """µm per pixel from a TIFF resolution as libvips reports it (``xres`` in px/mm and
    ``resolution-unit`` ``"cm"`` or ``"in"``); ``None`` without a unit or for a default.

    >>> pixel_size_from_resolution(4000.0, "cm")
    0.25
    """
    if unit not in ("cm", "in") or not math.isfinite(xres_px_per_mm) or xres_px_per_mm <= 0:
        return None
    if math.isclose(xres_px_per_mm, LIBVIPS_DEFAULT_PX_PER_MM, rel_tol=1e-4):
        return None  # libvips' own default (10 px/cm, 25.4 dpi): nothing was measured
    if unit == "in" and any(
        math.isclose(xres_px_per_mm * 25.4, dpi, rel_tol=1e-4) for dpi in _DEFAULT_DPI
    ):
        return None
    return 1000.0 / xres_px_per_mm


def pixel_size_um(image: Any, *, tiff: bool) -> float | None:
    """µm per pixel of a libvips image: its description first, then (``tiff`` only, as
    JPEG/PNG resolutions are almost always a default) its resolution tags."""
    fields = set(image.get_fields())
    if "image-description" in fields:
        desc = image.get("image-description")
        text = desc.decode("utf-8", "replace") if isinstance(desc, bytes) else str(desc)
        size = pixel_size_from_description(text)
        if size is not None:
            return size
    if tiff and "resolution-unit" in fields:
        return pixel_size_from_resolution(float(image.xres), str(image.get("resolution-unit")))
    return None


def _ome_pixel_size(xml: str) -> float | None:
    match = _OME_PIXELS.search(xml)
    if not match:
        return None
    attrs = dict(_XML_ATTR.findall(match.group(1)))
    size = _positive(attrs.get("PhysicalSizeX", ""))
    if size is None:
        return None
    factor = _OME_UNITS_UM.get(attrs.get("PhysicalSizeXUnit", "µm").strip())
    return size * factor if factor is not None else None


def _positive(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


__all__ = ["pixel_size_from_description", "pixel_size_from_resolution", "pixel_size_um"]
