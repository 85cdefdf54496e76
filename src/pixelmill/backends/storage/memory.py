"""In-memory storage: for tests and ``memory://``; lives as long as the process."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pixelmill.backends.storage.base import check_key
from pixelmill.errors import NotFound


class MemoryStorage:
    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        check_key(key)
        with self._lock:
            self._objects[key] = bytes(data)

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        self.put(key, Path(path).read_bytes(), content_type=content_type)

    def get(self, key: str) -> bytes:
        check_key(key)
        try:
            return self._objects[key]
        except KeyError:
            raise NotFound(f"no object {key!r}") from None

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self.get(key))

    def size(self, key: str) -> int:
        return len(self.get(key))

    def exists(self, key: str) -> bool:
        check_key(key)
        return key in self._objects

    def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._objects.pop(key, None)

    def list(self, prefix: str = "") -> Iterator[str]:
        with self._lock:
            keys = sorted(k for k in self._objects if k.startswith(prefix))
        return iter(keys)

    def local_path(self, key: str) -> Path | None:
        check_key(key)
        return None

    def ping(self) -> None:
        return None
