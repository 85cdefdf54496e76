"""Images rendered from a URL without being stored (remote sources, as in imgproxy and
thumbor).

A source is fetched once per URL and kept in a bounded in-memory cache for
``sources.cache_ttl_s`` (its bytes by total size, its probed metadata by count, longer
lived: a render already in the result cache needs no fetch at all). Concurrent requests
for a URL that is being fetched wait for that one fetch. The header is probed against
``render.max_pixels`` before anything is decoded, and the pixels are then decoded once,
failing on truncation, as uploads are: a damaged source is ``422 corrupt-image``, never a
render with grey where its data ended.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from datetime import UTC, datetime

from cachetools import LRUCache, TTLCache

from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.backends.sources.fetch import SourceFetcher
from pixelmill.imaging.probe import probe


def source_id(url: str, sha256: str) -> str:
    """The id a remote source renders (and its renders are cached) under: a hash of its
    URL and content, so a source that changes at its URL gets new renders once it is
    fetched again."""
    return "url-" + hashlib.sha256(f"{url}\0{sha256}".encode()).hexdigest()[:40]


class RemoteImages:
    """Records and bytes of remote sources by URL (thread-safe)."""

    def __init__(
        self,
        fetcher: SourceFetcher,
        *,
        max_pixels: int,
        cache_bytes: int,
        cache_ttl_s: int,
    ) -> None:
        self.fetcher = fetcher
        self.max_pixels = max_pixels
        ttl = max(cache_ttl_s, 1)
        self._bytes: TTLCache[str, bytes] = TTLCache(
            maxsize=max(cache_bytes, 1), ttl=ttl, getsizeof=len
        )
        self._records: TTLCache[str, ImageRecord] = TTLCache(maxsize=4096, ttl=ttl)
        self._cache_on = cache_bytes > 0 and cache_ttl_s > 0
        self._lock = threading.Lock()
        self._fetching: LRUCache[str, threading.Lock] = LRUCache(maxsize=1024)

    def record(self, url: str) -> ImageRecord:
        """The source's metadata, fetching it when it is not known yet."""
        with self._lock:
            record = self._records.get(url) if self._cache_on else None
        if record is not None:
            return record
        return self._fetch(url)[0]

    def source(self, url: str) -> bytes:
        """The source's bytes, fetched again when the cache let them go."""
        with self._lock:
            data = self._bytes.get(url) if self._cache_on else None
        if data is not None:
            return data
        return self._fetch(url)[1]

    def _fetch(self, url: str) -> tuple[ImageRecord, bytes]:
        with self._lock:
            flight = self._fetching.get(url)
            if flight is None:
                flight = self._fetching[url] = threading.Lock()
        with flight:  # one fetch per URL at a time; the others find its result
            with self._lock:
                record, data = self._records.get(url), self._bytes.get(url)
            if record is not None and data is not None and self._cache_on:
                return record, data
            data = self.fetcher.fetch(url)
            record = _record(url, data, self.max_pixels)
            if self._cache_on:
                with self._lock:
                    self._records[url] = record
                    with contextlib.suppress(ValueError):  # over the whole cache: not kept
                        self._bytes[url] = data
            return record, data


def _record(url: str, data: bytes, max_pixels: int) -> ImageRecord:
    """What the source is, from its header (refused above ``max_pixels``), once its
    pixels are proven to decode (refused when corrupt or truncated)."""
    info = probe(data, max_pixels=max_pixels)
    digest = hashlib.sha256(data).hexdigest()
    return ImageRecord(
        id=source_id(url, digest),
        sha256=digest,
        **info.columns(),
        size_bytes=len(data),
        filename=None,
        exif={},
        source="remote",
        job_id=None,
        created_at=datetime.now(UTC),
    )
