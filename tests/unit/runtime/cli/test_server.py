"""The banner `pixelmill up` prints: where it runs, in which mode, where the key is."""

from __future__ import annotations

from pathlib import Path

from pixelmill.runtime.cli.server import banner
from pixelmill.settings import Settings


def test_an_embedded_start_says_url_data_mode_key_and_docs(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", server={"port": 8123})  # type: ignore[arg-type]
    text = banner(settings, 2, 0, key_shown=True)
    assert "on http://127.0.0.1:8123" in text
    assert f"data       {(tmp_path / 'd').resolve()}" in text
    assert "mode       embedded: 2 server process(es)" in text
    assert "admin key  printed above" in text
    assert "API docs   http://127.0.0.1:8123/docs" in text
    assert "pixelmill up --verbose" in text
    assert "--verbose" not in banner(settings, 2, 0, key_shown=True, verbose=True)


def test_a_local_cluster_names_its_broker_without_the_password(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        broker={"url": "amqp://guest:s3cret@127.0.0.1:5672/"},  # type: ignore[arg-type]
    )
    text = banner(settings, 1, 2, key_shown=False)
    assert "local cluster: 1 server process(es), 2 job worker(s)" in text
    assert "amqp://guest:***@127.0.0.1:5672/" in text and "s3cret" not in text
    assert "admin key  printed at the first start" in text
