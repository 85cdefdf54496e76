"""Shared parameter types for geometric operations: gravity, colours."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator

Gravity = Literal[
    "centre",
    "north",
    "south",
    "east",
    "west",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
]
#: content-aware placements: libvips' attention/entropy, or centred on detected faces
#: (``face``; falls back to ``attention`` when none is found)
SmartGravity = Literal["attention", "entropy", "face"]

_NAMED = {
    "white": (255, 255, 255, 255),
    "black": (0, 0, 0, 255),
    "transparent": (0, 0, 0, 0),
    "grey": (128, 128, 128, 255),
    "gray": (128, 128, 128, 255),
}
_HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{8}|[0-9a-fA-F]{3})$")


def parse_colour(value: object) -> tuple[int, int, int, int]:
    """``#rgb``, ``rrggbb``, ``#rrggbbaa`` or a name into an RGBA tuple of 0..255."""
    if isinstance(value, (tuple, list)) and len(value) in (3, 4):
        rgba = [int(v) for v in value] + ([255] if len(value) == 3 else [])
        if all(0 <= v <= 255 for v in rgba):
            return (rgba[0], rgba[1], rgba[2], rgba[3])
        raise ValueError("colour components must be 0..255")
    if not isinstance(value, str):
        raise ValueError("colour must be a hex string like ff0000 or a name")
    text = value.strip().lower()
    if text in _NAMED:
        return _NAMED[text]
    match = _HEX.match(text)
    if not match:
        raise ValueError(f"not a colour: {value!r} (use rrggbb, rrggbbaa or white/black)")
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    if len(digits) == 6:
        digits += "ff"
    r, g, b, a = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
    return (r, g, b, a)


Colour = Annotated[tuple[int, int, int, int], BeforeValidator(parse_colour)]

#: libvips compass names for our gravity names
COMPASS = {
    "centre": "centre",
    "north": "north",
    "south": "south",
    "east": "east",
    "west": "west",
    "northeast": "north-east",
    "northwest": "north-west",
    "southeast": "south-east",
    "southwest": "south-west",
}


def gravity_offset(gravity: str, outer: int, inner: int, axis: Literal["x", "y"]) -> int:
    """Offset of an ``inner``-long window inside ``outer`` along ``axis`` for ``gravity``."""
    slack = outer - inner
    low, high = ("west", "east") if axis == "x" else ("north", "south")
    if low in gravity:
        return 0
    if high in gravity:
        return slack
    return slack // 2


def focal_offset(focus: float, outer: int, inner: int) -> int:
    """Offset placing fraction ``focus`` (0..1) of ``outer`` at the window centre, clamped."""
    want = round(focus * outer - inner / 2)
    return max(0, min(outer - inner, want))
