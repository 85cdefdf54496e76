"""The site secret that keys patients' external-id HMACs: made once, private, stable."""

from __future__ import annotations

import stat
from pathlib import Path

from pixelmill.runtime.wiring import site_secret
from tests.conftest import make_settings


def test_a_random_secret_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    first = site_secret(settings)
    assert len(first) >= 32
    path = settings.data_dir / "site-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert site_secret(settings) == first  # a restart hashes external ids the same way
    other = make_settings(tmp_path / "other")
    other.data_dir.mkdir(parents=True, exist_ok=True)
    assert site_secret(other) != first


def test_the_setting_wins_and_no_file_is_made(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, workspace={"site_secret": "s" * 40})
    assert site_secret(settings) == b"s" * 40
    assert not (settings.data_dir / "site-secret").exists()
