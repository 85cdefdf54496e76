"""The local-folder storage keeps every key inside its root, symlinks resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelmill.backends.storage.filesystem import FilesystemStorage
from pixelmill.errors import InvalidInput


def test_keys_resolve_inside_the_root(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "objects")
    storage.put("a/b", b"x")
    assert storage.get("a/b") == b"x"
    assert storage.local_path("a/b") == (tmp_path / "objects" / "a" / "b").resolve()
    assert storage.local_path("a/missing") is None


def test_a_symlink_out_of_the_root_or_into_its_temp_folder_is_refused(tmp_path: Path) -> None:
    # given a storage folder with a link to a secret outside it, and one to its temp folder
    storage = FilesystemStorage(tmp_path / "objects")
    (tmp_path / "secret").write_bytes(b"do not serve")
    (tmp_path / "objects" / "out").symlink_to(tmp_path / "secret")
    (tmp_path / "objects" / "up").symlink_to(tmp_path)
    (tmp_path / "objects" / "t").symlink_to(tmp_path / "objects" / ".tmp")
    # then neither can be read or written through a key
    for key in ("out", "up/secret", "t", "t/put-x"):
        with pytest.raises(InvalidInput):
            storage.get(key)
        with pytest.raises(InvalidInput):
            storage.put(key, b"y")
    assert (tmp_path / "secret").read_bytes() == b"do not serve"


def test_a_write_makes_durable_every_folder_it_creates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a write returns, the object's name survives a power loss: the file is synced,
    then its folder, then the parent of every folder the write had to create (each new
    folder is only a name in its parent until that parent is synced)."""
    import os

    storage = FilesystemStorage(tmp_path / "objects")
    storage.put("originals/ab/first", b"x")  # originals/ and originals/ab/ now exist
    synced: list[str] = []
    real_fsync = os.fsync

    def record(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    root = str((tmp_path / "objects").resolve())
    # into an existing folder: the file and that folder
    storage.put("originals/ab/second", b"y")
    assert synced[0].startswith(f"{root}/.tmp/put-")  # the file, before its rename
    assert synced[1:] == [f"{root}/originals/ab"]
    synced.clear()
    # into two new folders: the file, its folder, then each new folder's parent
    storage.put("originals/cd/ef/third", b"z")
    assert synced[1:] == [
        f"{root}/originals/cd/ef",
        f"{root}/originals/cd",
        f"{root}/originals",
    ]
    assert storage.get("originals/cd/ef/third") == b"z"
