"""The banner `pixelmill up` prints: where it runs, in which mode, where the key is."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelmill.runtime.cli._common import ADMIN_KEY_FILE, ADMIN_PASSWORD_FILE, hand_over_admin
from pixelmill.runtime.cli.server import banner
from pixelmill.settings import Settings


def test_an_embedded_start_says_url_data_mode_key_and_docs(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", server={"port": 8123})  # type: ignore[arg-type]
    text = banner(settings, 2, 0, key_at="printed above, only this once")
    assert "on http://127.0.0.1:8123" in text
    assert f"data       {(tmp_path / 'd').resolve()}" in text
    assert "mode       embedded: 2 server process(es)" in text
    assert "admin key  printed above" in text
    assert "API docs   http://127.0.0.1:8123/docs" in text
    assert "pixelmill up --verbose" in text
    assert "--verbose" not in banner(settings, 2, 0, key_at="printed above", verbose=True)


def test_a_local_cluster_names_its_broker_without_the_password(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        broker={"url": "amqp://guest:s3cret@127.0.0.1:5672/"},  # type: ignore[arg-type]
    )
    text = banner(settings, 1, 2, key_at=None)
    assert "local cluster: 1 server process(es), 2 job worker(s)" in text
    assert "amqp://guest:***@127.0.0.1:5672/" in text and "s3cret" not in text
    assert "admin key  given at the first start" in text


def test_without_a_terminal_the_admin_key_goes_to_a_private_file_not_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a first start under a service manager (stdout is a pipe to the logs)
    where = hand_over_admin("the-password-1", "pm_secret_value", tmp_path)
    logged = capsys.readouterr().out
    # then the log says where the key and password are, but not them
    assert "pm_secret_value" not in logged and "the-password-1" not in logged
    key_file, password_file = tmp_path / ADMIN_KEY_FILE, tmp_path / ADMIN_PASSWORD_FILE
    for path, value in ((key_file, "pm_secret_value"), (password_file, "the-password-1")):
        assert str(path) in logged and str(path) in where
        assert path.read_text().strip() == value
        assert path.stat().st_mode & 0o777 == 0o600
