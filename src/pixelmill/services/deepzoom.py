"""Deep-zoom (DZI) tiles of stored images for the viewer: the descriptor and each tile,
read from the best level the original holds (``imaging.pyramid``), under the
same render slots, time budget and result cache as renders.

Originals are read from a local path: the storage's own file, or (object storage) a
copy downloaded once into ``spool_dir`` (``services.slide_copies``) so a tile reads a
few of a slide's tiles, not the whole file. Open originals are kept in a small LRU (their headers and libvips'
tile caches are what makes the next tile of the same slide cheap).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cachetools import LRUCache

from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.errors import CorruptImage, InvalidParameter
from pixelmill.imaging import encode as encoding
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.pyramid import DeepZoomGrid, PyramidReader
from pixelmill.observability import metrics
from pixelmill.services.images import ImageService
from pixelmill.services.render_gate import RenderGuard
from pixelmill.services.slide_copies import SlideCopies

#: bump when tiles change: cached ones are made again
TILE_VERSION = "2"  # 2: 8-bit tiles of 16-bit images
TILE_SIZE = 510  # + 1 px overlap on each inner side: 512 px tiles, 1 px shared
OVERLAP = 1
TILE_FORMATS = {
    "jpeg": ImageFormat.JPEG,
    "jpg": ImageFormat.JPEG,
    "png": ImageFormat.PNG,
    "webp": ImageFormat.WEBP,
}


@dataclass(frozen=True)
class Tile:
    body: bytes
    media_type: str
    cache_hit: bool


def tile_format(record: ImageRecord) -> str:
    """The descriptor's tile format: PNG keeps an alpha channel, JPEG for the rest."""
    return "png" if record.bands in (2, 4) else "jpeg"


class DeepZoomTiles:
    def __init__(self, images: ImageService, *, spool_dir: Path, open_slides: int = 16) -> None:
        self.images = images
        self.spool_dir = spool_dir
        self.copies = SlideCopies(images.storage, spool_dir)
        self._readers: LRUCache[str, PyramidReader] = LRUCache(maxsize=open_slides)
        self._lock = threading.Lock()

    # -- geometry -----------------------------------------------------------------------
    def grid(self, record: ImageRecord) -> DeepZoomGrid:
        reader = self.reader(record)
        return DeepZoomGrid(reader.width, reader.height, TILE_SIZE, OVERLAP)

    def descriptor(self, record: ImageRecord, *, json: bool) -> dict[str, object] | str:
        """The ``.dzi`` descriptor (XML, or the JSON form OpenSeadragon also reads)."""
        return self.grid(record).descriptor(tile_format(record), json=json)

    # -- tiles --------------------------------------------------------------------------
    def key(self, record: ImageRecord, level: int, col: int, row: int, fmt: str) -> str:
        """The cache key and (first 40 hex digits) the ETag of a tile: by content, so
        every handle of the same bytes shares its tiles."""
        out = _format(fmt)
        quality = self._quality(out)
        text = f"dzi:{TILE_VERSION}:{record.sha256}:{TILE_SIZE}:{OVERLAP}:{level}:{col}:{row}"
        return hashlib.sha256(f"{text}:{out.value}:{quality}".encode()).hexdigest()

    def cached(self, key: str, fmt: str) -> Tile | None:
        body = self.images.cache.get(key)
        metrics.CACHE_REQUESTS.labels("miss" if body is None else "hit").inc()
        return None if body is None else Tile(body, _format(fmt).mime, True)

    def compute(
        self,
        record: ImageRecord,
        level: int,
        col: int,
        row: int,
        fmt: str,
        gone: Callable[[], bool] | None = None,
    ) -> Tile:
        """Read, encode and cache one tile in a render slot within the render budget;
        ``gone()`` says the client left (the tile is then not made, or stopped)."""
        out = _format(fmt)
        key = self.key(record, level, col, row, fmt)
        settings = self.images.settings
        guard = RenderGuard(settings.time_budget_s, gone)
        try:
            with self.images.render_gate.slot(gone):
                started = time.perf_counter()
                reader = self.reader(record)
                grid = DeepZoomGrid(reader.width, reader.height, TILE_SIZE, OVERLAP)
                image = reader.tile(grid, level, col, row, max_pixels=settings.max_pixels)
                # 8 bits a channel, as a viewer shows them: a 16-bit PNG tile is twice the
                # bytes for nothing on screen
                body = encoding.encode(image, out, quality=self._quality(out), depth=8, stop=guard)
        except CorruptImage as exc:
            stopped = guard.error()
            if stopped is not None:  # we stopped libvips: not the image's fault
                raise stopped from exc
            raise
        metrics.RENDER_SECONDS.labels("dzi_tile").observe(time.perf_counter() - started)
        self.images.cache.set(key, body, ttl=self.images.cache_ttl)
        return Tile(body, out.mime, False)

    def _quality(self, fmt: ImageFormat) -> int:
        settings = self.images.settings
        return settings.quality.get(fmt.value) or settings.default_quality

    # -- originals ----------------------------------------------------------------------
    def reader(self, record: ImageRecord) -> PyramidReader:
        """The open original of ``record`` (shared by every tile of it)."""
        with self._lock:
            found = self._readers.get(record.sha256)
        if found is not None:
            return found
        reader = PyramidReader(self._local(record))
        with self._lock:
            self._readers[record.sha256] = reader
        return reader

    def forget(self, record: ImageRecord) -> None:
        """Close the original of a deleted image and drop its downloaded copy."""
        with self._lock:
            self._readers.pop(record.sha256, None)
        self.copies.forget(record)

    def _local(self, record: ImageRecord) -> Path:
        return self.copies.path(record)


def _format(fmt: str) -> ImageFormat:
    try:
        return TILE_FORMATS[fmt]
    except KeyError:
        raise InvalidParameter(
            f"tile format {fmt!r}: one of {', '.join(sorted(TILE_FORMATS))}"
        ) from None
