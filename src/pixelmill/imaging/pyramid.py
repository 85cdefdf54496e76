"""Deep-zoom tiles read from the best resolution a file holds.

A DeepZoom (DZI) pyramid halves the image per level, down to one pixel. A whole slide
already holds some of those levels: the reduced pages of a pyramidal TIFF or SVS (or its
sub-IFDs, OME-TIFF style); a JPEG decodes at 1/2, 1/4 and 1/8 on load. A tile is read
from the finest stored level no finer than it needs, cropped to its region there and
resized, so it decodes at most a few times its own pixels from a tiled file, whatever
the slide's size; libvips opens each level lazily with random access.

Like libvips elsewhere in ``imaging``, it reads only the source it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from pixelmill.errors import CorruptImage, ImageTooLarge, NotFound

Source = bytes | Path

#: how far a reduced level's aspect ratio may differ from the full one's (rounding)
_ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class DeepZoomGrid:
    """The DeepZoom geometry of a ``width`` x ``height`` image: levels 0 (1 x 1 px)
    to :attr:`max_level` (full resolution), tiles of ``tile_size`` px plus ``overlap``
    px shared with each neighbour."""

    width: int
    height: int
    tile_size: int = 510
    overlap: int = 1

    @property
    def max_level(self) -> int:
        return math.ceil(math.log2(max(self.width, self.height, 1)))

    def scale(self, level: int) -> int:
        """Full-resolution pixels per pixel of ``level`` (a power of two)."""
        if not 0 <= level <= self.max_level:
            raise NotFound(f"no level {level}: levels are 0..{self.max_level}")
        return 1 << (self.max_level - level)

    def level_size(self, level: int) -> tuple[int, int]:
        d = self.scale(level)
        return max(1, math.ceil(self.width / d)), max(1, math.ceil(self.height / d))

    def tiles(self, level: int) -> tuple[int, int]:
        """Columns and rows of tiles at ``level``."""
        w, h = self.level_size(level)
        return math.ceil(w / self.tile_size), math.ceil(h / self.tile_size)

    def tile_box(self, level: int, col: int, row: int) -> tuple[int, int, int, int]:
        """Tile (col, row) of ``level`` as (left, top, right, bottom) in that level's
        pixels, end-exclusive, overlap included; ``NotFound`` outside the grid."""
        cols, rows = self.tiles(level)
        if not (0 <= col < cols and 0 <= row < rows):
            raise NotFound(f"no tile {col}_{row} at level {level}: it has {cols} x {rows}")
        w, h = self.level_size(level)
        t, o = self.tile_size, self.overlap
        left, top = col * t - (o if col else 0), row * t - (o if row else 0)
        return left, top, min(w, (col + 1) * t + o), min(h, (row + 1) * t + o)

    def descriptor(self, fmt: str, *, json: bool = False) -> dict[str, Any] | str:
        """The ``.dzi`` descriptor: XML, or with ``json`` the dict OpenSeadragon reads."""
        ns = "http://schemas.microsoft.com/deepzoom/2008"
        if json:
            return {
                "Image": {
                    "xmlns": ns,
                    "Format": fmt,
                    "Overlap": str(self.overlap),
                    "TileSize": str(self.tile_size),
                    "Size": {"Width": str(self.width), "Height": str(self.height)},
                }
            }
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Image xmlns="{ns}" Format="{fmt}" Overlap="{self.overlap}" '
            f'TileSize="{self.tile_size}"><Size Width="{self.width}" Height="{self.height}"/>'
            "</Image>\n"
        )


@dataclass(frozen=True)
class Level:
    """One stored resolution: how libvips opens it and its size in pixels."""

    options: tuple[tuple[str, int], ...]
    width: int
    height: int


def _open(source: Source, **options: Any) -> pyvips.Image:
    try:
        if isinstance(source, bytes):
            return pyvips.Image.new_from_buffer(source, "", access="random", **options)
        return pyvips.Image.new_from_file(str(source), access="random", **options)
    except pyvips.Error as exc:  # libvips' words name the server's file: logged as cause
        raise CorruptImage("cannot read the image: it is corrupt or truncated") from exc


def _field(image: pyvips.Image, name: str, default: Any = None) -> Any:
    return image.get(name) if name in image.get_fields() else default


def stored_levels(source: Source) -> list[Level]:
    """The resolutions ``source`` holds, finest first: the full one, then a tiled
    TIFF's reduced pages or sub-IFDs (same bands and aspect, each smaller), or a
    JPEG's shrink-on-load sizes. One level for anything else."""
    full = _open(source)
    levels = [Level((), full.width, full.height)]
    loader = str(_field(full, "vips-loader", ""))
    if loader.startswith("jpeg"):
        for shrink in (2, 4, 8):
            if full.width // shrink and full.height // shrink:
                small = _open(source, shrink=shrink)
                levels.append(Level((("shrink", shrink),), small.width, small.height))
        return levels
    if not loader.startswith("tiff"):
        return levels
    subifds = int(_field(full, "n-subifds", 0))
    candidates = (
        [("subifd", i) for i in range(subifds)]
        if subifds
        else [("page", i) for i in range(1, int(_field(full, "n-pages", 1)))]
    )
    aspect = full.width / full.height
    for name, index in candidates:
        image = _open(source, **{name: index})
        smaller = image.width < levels[-1].width and image.height <= levels[-1].height
        same_aspect = abs(image.width / image.height - aspect) <= _ASPECT_TOLERANCE * aspect
        tiled = subifds > 0 or "tile-width" in image.get_fields()
        if smaller and same_aspect and tiled and image.bands == full.bands:
            levels.append(Level(((name, index),), image.width, image.height))
    return levels


def is_pyramid(source: Source) -> bool:
    """True for a tiled TIFF holding reduced levels (a whole slide)."""
    levels = stored_levels(source)
    tiled = "tile-width" in _open(source).get_fields()
    return tiled and len(levels) > 1


class PyramidReader:
    """Reads DeepZoom tiles of ``source`` from its best stored level.

    ``width``/``height`` are the full resolution's, after EXIF orientation for the
    formats that carry one. Levels open lazily; the reader may be shared by threads.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.levels = stored_levels(source)
        self._opened: dict[int, pyvips.Image] = {}
        full = self._level(0)
        self.width, self.height = full.width, full.height

    def _level(self, index: int) -> pyvips.Image:
        image = self._opened.get(index)
        if image is None:
            image = _open(self.source, **dict(self.levels[index].options))
            if int(_field(image, "orientation", 1)) > 1:
                image = image.autorot()
            self._opened[index] = image
        return image

    def smallest(self) -> pyvips.Image:
        """The coarsest stored level (a cheap check that the pyramid decodes)."""
        return self._level(len(self.levels) - 1)

    def tile(
        self, grid: DeepZoomGrid, level: int, col: int, row: int, *, max_pixels: int
    ) -> pyvips.Image:
        """Tile (col, row) of DeepZoom ``level``, lazily: cropped from the coarsest
        stored level at least as fine as the tile and resized to the tile's size.
        Raises ``ImageTooLarge`` when that crop has more than ``max_pixels`` pixels."""
        left, top, right, bottom = grid.tile_box(level, col, row)
        d = grid.scale(level)
        index = self._best(d)
        image = self._level(index)
        sx, sy = image.width / self.width, image.height / self.height  # level px per full px
        x0, y0 = math.floor(left * d * sx), math.floor(top * d * sy)
        x1 = min(image.width, max(x0 + 1, math.ceil(min(right * d, self.width) * sx)))
        y1 = min(image.height, max(y0 + 1, math.ceil(min(bottom * d, self.height) * sy)))
        if (x1 - x0) * (y1 - y0) > max_pixels:
            raise ImageTooLarge(
                f"tile {col}_{row} of level {level} would decode {(x1 - x0) * (y1 - y0)} "
                f"pixels, more than the limit of {max_pixels}: the file has no reduced "
                "level near this scale",
                max_pixels=max_pixels,
            )
        region = image.crop(x0, y0, x1 - x0, y1 - y0)
        out_w, out_h = right - left, bottom - top
        if (region.width, region.height) == (out_w, out_h):
            return region
        resized = region.resize(out_w / region.width, vscale=out_h / region.height)
        if (resized.width, resized.height) != (out_w, out_h):  # rounding: pad or trim 1 px
            resized = resized.gravity("north-west", out_w, out_h, extend="copy")
        return resized

    def _best(self, scale: int) -> int:
        """The coarsest stored level whose pixels are at most ``scale`` full pixels."""
        best = 0
        for i, lv in enumerate(self.levels):
            # longest sides: a JPEG's stored sizes are before its EXIF rotation
            ratio = max(self.width, self.height) / max(lv.width, lv.height)
            if ratio <= scale * (1 + _ASPECT_TOLERANCE):
                best = i
        return best
