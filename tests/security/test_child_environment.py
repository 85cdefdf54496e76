"""Secrets never travel to child processes through the environment (issue 18, #12)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pixelmill.runtime.cli._common import RUN_SETTINGS_FILE, export_env
from pixelmill.settings import Settings


def test_children_get_the_settings_from_a_private_file_not_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("PIXELMILL_")]:
        monkeypatch.delenv(name)
    # given settings holding secrets (from a config file or command-line options)
    settings = Settings(
        data_dir=tmp_path,
        security={"signing_key": "sign-me-secret"},  # type: ignore[arg-type]
        database={"url": "postgresql+psycopg://app:db-pass-secret@127.0.0.1/x"},  # type: ignore[arg-type]
        workspace={"site_secret": "site-secret-value"},  # type: ignore[arg-type]
    )
    # when pixelmill up hands them to its server and worker processes
    with monkeypatch.context() as env:
        env.setattr(os, "environ", dict(os.environ))
        export_env(settings)
        child_env = dict(os.environ)
        # then a child rebuilds exactly these settings
        assert Settings() == settings.model_copy(update={"data_dir": tmp_path.resolve()})
    # but no secret is in its environment, only the path of a file its user alone reads
    text = "\n".join(f"{k}={v}" for k, v in child_env.items())
    for secret in ("sign-me-secret", "db-pass-secret", "site-secret-value"):
        assert secret not in text
    path = tmp_path / RUN_SETTINGS_FILE
    assert child_env["PIXELMILL_CONFIG"] == str(path.resolve())
    assert path.stat().st_mode & 0o777 == 0o600
