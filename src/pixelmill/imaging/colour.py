"""Colour management: pixels with an embedded ICC profile become sRGB before anything
else sees them (as sharp and imgproxy do), because metadata stripping drops the profile
and a viewer then reads the numbers as sRGB.

Only images whose profile is *not* sRGB pay for a transform (littleCMS via libvips
``icc_transform``); an sRGB or missing profile costs a metadata lookup. ``keep`` leaves
an RGB or grey profile and its pixels untouched, for callers that embed it in the
output. A CMYK profile is always resolved: the output formats hold RGB.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Literal

import pyvips

#: what to do with an embedded profile: convert to sRGB, or keep it (and the pixels)
IccMode = Literal["srgb", "keep"]

_ICC = "icc-profile-data"
#: interpretations whose pixels an RGB profile describes
_RGB = ("srgb", "rgb16")


def profile_space(icc: bytes) -> str:
    """The data colour space of an ICC profile (header bytes 16..20): ``RGB``, ``GRAY``,
    ``CMYK`` ... or ``""`` when the blob is too short to be a profile."""
    return icc[16:20].decode("ascii", "replace").strip() if len(icc) >= 128 else ""


@lru_cache(maxsize=64)
def _description(icc: bytes) -> str | None:
    """The profile's description, lower case; ``None`` when littleCMS cannot read it.
    Cached: photos from one camera share one profile."""
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile
    except (OSError, ImageCms.PyCMSError, ValueError):
        return None
    return (profile.profile_description or "").lower()


def is_srgb(icc: bytes) -> bool:
    """True when an RGB profile describes itself as sRGB (``sRGB IEC61966-2.1``,
    ``sRGB built-in`` ...)."""
    text = _description(icc) if profile_space(icc) == "RGB" else None
    return text is not None and "srgb" in text and "linear" not in text


def to_srgb(image: pyvips.Image, *, mode: IccMode = "srgb") -> pyvips.Image:
    """``image`` with its pixels in sRGB, per its embedded ICC profile.

    RGB pixels under a non-sRGB RGB profile (Display P3, Adobe RGB ...) and CMYK pixels
    are transformed with littleCMS (relative colorimetric, 16-bit stays 16-bit) and carry
    the sRGB profile afterwards. A profile that no longer matches the pixels (libvips'
    thumbnail turns CMYK into sRGB but leaves the CMYK profile attached) or that
    littleCMS cannot read is dropped, so no output embeds a profile that misdescribes it
    and a broken profile does not fail the render. ``mode="keep"`` leaves RGB and
    grey profiles and their pixels as they are. Images without a profile are returned
    as they are (libvips' own CMYK fallback converts those at encoding).
    """
    if not image.get_typeof(_ICC):  # get_fields() lists every field: ~30x the cost
        return image
    icc = bytes(image.get(_ICC))
    space = profile_space(icc) if _description(icc) is not None else "unreadable"
    interpretation = str(image.interpretation)
    if space == "CMYK" and interpretation == "cmyk":
        return _transform(image)
    if space == "RGB" and interpretation in _RGB and image.bands in (3, 4):
        if mode == "keep" or is_srgb(icc):
            return image
        return _transform(image)
    if space == "GRAY" and interpretation in ("b-w", "grey16") and image.bands in (1, 2):
        return image  # a grey tone curve: kept (the difference from sRGB's is slight)
    out = image.copy()
    out.remove(_ICC)
    return out


def _transform(image: pyvips.Image) -> pyvips.Image:
    depth = 16 if str(image.format) == "ushort" else 8
    return image.icc_transform("srgb", embedded=True, depth=depth)
