"""A slide opened for tiled reading: libvips for (pyramidal) TIFF, OME-TIFF, SVS with
JPEG tiles and every format it reads; OpenSlide (``openslide-python`` + ``openslide-bin``)
for vendor formats libvips lacks (NDPI, MRXS, SCN, VMS, ...).

Reads only the path it is given (see the package docstring for why that is core).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyvips

from pixelmill.errors import InvalidParameter, NotFound
from pixelmill.imaging.ops._analysis import to_array
from pixelmill.imaging.pixel_size import pixel_size_um as read_pixel_size

#: suffixes read through OpenSlide rather than libvips
OPENSLIDE_SUFFIXES = frozenset({".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide"})


class Slide:
    """A slide opened for tiled reading: size, regions, a thumbnail.

    libvips opens TIFF/OME-TIFF/SVS lazily with random access (only the tiles a region
    touches are decoded); vendor formats go through OpenSlide.
    """

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise NotFound(f"slide {path.name!r} does not exist")
        self.path = path
        self.vips: pyvips.Image | None = None
        self._openslide: Any = None
        if path.suffix.lower() in OPENSLIDE_SUFFIXES:
            import openslide

            self._openslide = openslide.OpenSlide(str(path))
            self.width, self.height = self._openslide.dimensions
        else:
            try:
                self.vips = pyvips.Image.new_from_file(str(path), access="random")
            except pyvips.Error as exc:
                # libvips' words name the server's path: the cause, logged at the edge
                raise InvalidParameter(
                    f"cannot read slide {path.name!r}: not a slide format we read, or corrupt"
                ) from exc
            self.width, self.height = self.vips.width, self.vips.height

    @property
    def openslide(self) -> Any:
        """The ``openslide.OpenSlide`` handle of a vendor-format slide, else ``None``."""
        return self._openslide

    @property
    def pixel_size_um(self) -> float | None:
        """µm per pixel at full resolution (OME-XML, Aperio ``MPP``, TIFF resolution or
        OpenSlide's ``openslide.mpp-x``), or ``None`` when the file does not say."""
        if self._openslide is not None:
            mpp = self._openslide.properties.get("openslide.mpp-x")
            try:
                value = float(mpp) if mpp is not None else None
            except ValueError:
                return None
            return value if value is not None and value > 0 else None
        assert self.vips is not None
        loader = (
            str(self.vips.get("vips-loader")) if "vips-loader" in self.vips.get_fields() else ""
        )
        return read_pixel_size(self.vips, tiff=loader.startswith("tiff"))

    def read(self, r0: int, c0: int, r1: int, c1: int) -> np.ndarray:
        """Pixels of rows r0..r1, cols c0..c1 (end-exclusive), alpha removed."""
        if self._openslide is not None:
            region = self._openslide.read_region((c0, r0), 0, (c1 - c0, r1 - r0))
            return np.asarray(region)[..., :3].copy()
        assert self.vips is not None
        return to_array(self.vips.crop(c0, r0, c1 - c0, r1 - r0))[0]

    def thumbnail(self, side: int = 1024) -> tuple[np.ndarray, float]:
        """A thumbnail at most ``side`` px, and its scale (thumbnail px per slide px)."""
        if self._openslide is not None:
            thumb = np.asarray(self._openslide.get_thumbnail((side, side)).convert("RGB"))
            return thumb, thumb.shape[1] / self.width
        assert self.vips is not None
        image = self.vips.thumbnail_image(side, height=side)
        return to_array(image)[0], image.width / self.width
