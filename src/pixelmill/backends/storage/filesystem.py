"""Local-folder storage: atomic writes (temp file + fsync + rename), keys confined to root."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pixelmill.backends.storage.base import check_key
from pixelmill.errors import BackendUnavailable, InvalidInput, NotFound

_TMP = ".tmp"


class FilesystemStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        (self.root / _TMP).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        check_key(key)
        path = (self.root / key).resolve()
        # belt and braces: even a key that passed the syntax check must stay inside root
        if self.root not in path.parents or path.is_relative_to(self.root / _TMP):
            raise InvalidInput(f"invalid storage key {key!r}")
        return path

    def _write(self, key: str, fill: object) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root / _TMP)
        try:
            with os.fdopen(fd, "wb") as fh:
                fill(fh)  # type: ignore[operator]
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        self._write(key, lambda fh: fh.write(data))

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        def copy(fh: BinaryIO) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, fh, 1024 * 1024)

        self._write(key, copy)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"no object {key!r}") from None

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"no object {key!r}") from None

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"no object {key!r}")
        return path.stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[str]:
        keys = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d != _TMP]
            for name in filenames:
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise BackendUnavailable(f"storage folder {self.root} is not writable")
