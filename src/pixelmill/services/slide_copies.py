"""Local copies of originals kept on object storage, for readers that want a few tiles
of a big file (a whole slide) rather than all its bytes: the viewer's deep-zoom tiles
and a job reading a region of a slide.

A file store's originals are read in place; an original on S3 is downloaded once into
``spool_dir`` (named by its content hash, written atomically), so a tile or a region
reads a few of the slide's tiles from disk instead of holding the object in memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.backends.storage.base import Storage


class SlideCopies:
    def __init__(self, storage: Storage, spool_dir: Path) -> None:
        self.storage = storage
        self.spool_dir = spool_dir

    def path(self, record: ImageRecord) -> Path:
        """A local path of ``record``'s original: the storage's own file, or the copy."""
        path = self.storage.local_path(record.storage_key)
        if path is not None:
            return path
        copy = self.spool_dir / record.sha256
        if copy.is_file():
            return copy
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.spool_dir, prefix="download-")
        try:
            with os.fdopen(fd, "wb") as out, self.storage.open(record.storage_key) as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
            os.replace(name, copy)  # atomic: a concurrent reader sees all or nothing
        finally:
            Path(name).unlink(missing_ok=True)
        return copy

    def forget(self, record: ImageRecord) -> None:
        """Drop the downloaded copy of a deleted image's original."""
        (self.spool_dir / record.sha256).unlink(missing_ok=True)
