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
