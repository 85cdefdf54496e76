from __future__ import annotations

from pathlib import Path

import pytest

from pixelmill.settings import Settings


def test_defaults_are_embedded_and_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(__import__("os").environ):
        if var.startswith("PIXELMILL_"):
            monkeypatch.delenv(var)
    s = Settings()
    assert (s.broker.url, s.cache.url) == ("memory://", "memory://")
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8000)
    # a 100 MP camera frame (11648 x 8736) is accepted; a 16384-square bomb is not
    assert 11648 * 8736 < s.render.max_pixels < 16384 * 16384
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("pixelmill.db")
    assert s.storage_url.startswith("file://")
    assert s.security.auth_enabled and not s.security.public_read


def test_environment_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXELMILL_RENDER__MAX_PIXELS", "1234")
    monkeypatch.setenv("PIXELMILL_SERVER__PORT", "9001")
    monkeypatch.setenv("PIXELMILL_DATA_DIR", "/tmp/elsewhere")
    s = Settings()
    assert (s.render.max_pixels, s.server.port, s.data_dir) == (1234, 9001, Path("/tmp/elsewhere"))


def test_config_file_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "pm.yaml"
    cfg.write_text("render:\n  max_pixels: 555\n  default_quality: 70\nserver:\n  port: 7000\n")
    monkeypatch.setenv("PIXELMILL_CONFIG", str(cfg))
    monkeypatch.setenv("PIXELMILL_SERVER__PORT", "7001")
    s = Settings()
    assert (s.render.max_pixels, s.render.default_quality, s.server.port) == (555, 70, 7001)


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXELMILL_RENDER__DEFAULT_QUALITY", "101")
    with pytest.raises(ValueError):
        Settings()


def test_finished_jobs_are_kept_30_days_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIXELMILL_JOBS__RETENTION_DAYS", raising=False)
    assert Settings().jobs.retention_days == 30
    monkeypatch.setenv("PIXELMILL_JOBS__RETENTION_DAYS", "0")  # keep forever
    assert Settings().jobs.retention_days == 0
    for bad in ("-1", "inf", "nan", "1e10"):  # no date is that far back: purges would crash
        monkeypatch.setenv("PIXELMILL_JOBS__RETENTION_DAYS", bad)
        with pytest.raises(ValueError):
            Settings()
