"""Archives read from files (never whole in memory): the same checks as from bytes, a
member copied into a file with its size capped, and zip-slip names found."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from pixelmill.errors import ImageTooLarge, InvalidDataset
from pixelmill.ml.dataset_limits import DatasetLimits, copy_member, open_archive, unsafe_names


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_a_zip_on_disk_is_checked_and_copied_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    write_zip(path, {"a/b.bin": b"x" * 5000, "c.bin": b"y"})
    with path.open("rb") as fh:
        archive, infos = open_archive(fh, DatasetLimits())
        out = io.BytesIO()
        assert copy_member(archive, infos[0], DatasetLimits(), out) == 5000
        assert out.getvalue() == b"x" * 5000
    with path.open("rb") as fh, pytest.raises(ImageTooLarge):
        open_archive(fh, DatasetLimits(max_member_bytes=1000))
    with path.open("rb") as fh, pytest.raises(ImageTooLarge):
        open_archive(fh, DatasetLimits(max_files=1))
    (tmp_path / "not.zip").write_bytes(b"plain text")
    with (tmp_path / "not.zip").open("rb") as fh, pytest.raises(InvalidDataset):
        open_archive(fh, DatasetLimits())


@pytest.mark.parametrize(
    ("name", "unsafe"),
    [
        ("ok/fine.png", False),
        ("../up.png", True),
        ("a/../../up.png", True),
        ("/etc/passwd", True),
        ("C:/windows/x.png", True),
        ("a\\..\\x.png", True),
        ("..hidden-but-safe.png", False),
    ],
)
def test_zip_slip_names(name: str, unsafe: bool) -> None:
    assert unsafe_names([zipfile.ZipInfo(name)]) == ([name] if unsafe else [])
