"""Local-folder storage: atomic writes (temp file + fsync + rename), keys confined to root.

Temp files live in ``ROOT/.tmp`` (same file system, so the rename is atomic); a crash can
leave one behind, and temp files older than :data:`STALE_TMP_SECONDS` are swept at start-up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from pixelmill.backends.storage.base import check_key
from pixelmill.errors import BackendUnavailable, InvalidInput, NotFound, StorageError

_TMP = ".tmp"
#: temp files older than this are leftovers of a crashed writer (seconds)
STALE_TMP_SECONDS = 3600
# a path component that is a file, or an object where a folder should be
_MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class FilesystemStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        (self.root / _TMP).mkdir(parents=True, exist_ok=True)
        # string prefixes for the confinement check of every access (pathlib's
        # resolve + parents walk was ~7 % of a job task's CPU)
        self._inside = os.path.join(self.root, "")
        self._tmp = str(self.root / _TMP)
        self._sweep_tmp()

    def _sweep_tmp(self) -> None:
        cutoff = time.time() - STALE_TMP_SECONDS
        for entry in os.scandir(self.root / _TMP):
            try:
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:  # another process swept it first
                pass

    def _path(self, key: str) -> Path:
        check_key(key)
        # belt and braces: even a key that passed the syntax check must stay inside root
        # once symlinks are resolved, and out of the temp folder
        path = os.path.realpath(self._inside + key)
        if not path.startswith(self._inside) or (
            path == self._tmp or path.startswith(self._tmp + os.sep)
        ):
            raise InvalidInput(f"invalid storage key {key!r}")
        return Path(path)

    def _write(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        path = self._path(key)
        fd, tmp = tempfile.mkstemp(dir=self.root / _TMP, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fill(fh)
                fh.flush()
                os.fsync(fh.fileno())
            created = self._publish(key, tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise StorageError(f"cannot store {key!r}: {exc}") from exc
            raise
        self._sync_dir(path.parent)
        # a folder this write made is only a name in its parent until that is synced too,
        # or a crash may lose the folder and the object in it
        for new in created:
            self._sync_dir(new.parent)

    def _publish(self, key: str, tmp: str, path: Path) -> list[Path]:
        """Rename the finished temp file onto ``path`` (atomic on one file system).
        Returns the folders made for it, deepest first."""
        created: dict[Path, None] = {}
        for _ in range(5):
            folder = path.parent
            while folder != self.root and not folder.exists():  # what the mkdir makes
                created[folder] = None
                folder = folder.parent
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise StorageError(
                    f"cannot store {key!r}: part of its path is already an object"
                ) from None
            try:
                os.replace(tmp, path)
                return list(created)
            except FileNotFoundError:
                continue  # a concurrent delete pruned the emptied folder: make it again
            except (IsADirectoryError, OSError) as exc:
                if not path.is_dir():
                    raise
                try:
                    path.rmdir()  # an empty folder left behind is no object: replace it
                except OSError:
                    raise StorageError(
                        f"cannot store {key!r}: it is a folder of other objects"
                    ) from exc
        raise StorageError(f"cannot store {key!r}: its folder keeps disappearing")

    @staticmethod
    def _sync_dir(folder: Path) -> None:
        # make the rename itself durable (the file data was fsynced before it)
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

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
        except _MISSING:
            raise NotFound(f"no object {key!r}") from None

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except _MISSING:
            raise NotFound(f"no object {key!r}") from None

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"no object {key!r}")
        return path.stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():  # a folder of other objects, not an object
            return
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        # prune folders the delete emptied, so a later key may take their name;
        # rmdir refuses non-empty folders, which ends the walk
        folder = path.parent
        while folder != self.root:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    def list(self, prefix: str = "") -> Iterator[str]:
        start = self.root
        folder = prefix.rpartition("/")[0]
        if folder:
            # walk only the folder the prefix names (when it is a safe key path)
            try:
                start = self._path(folder)
            except InvalidInput:
                start = self.root
        keys = []
        for dirpath, dirnames, filenames in os.walk(start):
            if dirpath == str(self.root):
                # only the top-level temp folder is ours; "a/.tmp/x" is a valid key
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
