"""Logging levels come from settings.observability; `up --verbose` and a quiet `up`."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from pixelmill.observability.logging import configure_logging
from pixelmill.settings import ObservabilitySettings, Settings


@pytest.fixture(autouse=True)
def restore_levels() -> Iterator[None]:
    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    access = logging.getLogger("pixelmill.access")
    saved = root.level, alembic.level, access.level
    yield
    root.setLevel(saved[0])
    alembic.setLevel(saved[1])
    access.setLevel(saved[2])


def shown(name: str, level: int) -> bool:
    return logging.getLogger(name).isEnabledFor(level)


def test_the_configured_level_applies_and_migration_lines_stay_hidden() -> None:
    assert configure_logging(ObservabilitySettings(log_level="info")) == logging.INFO
    assert shown("pixelmill.jobs", logging.INFO)
    assert not shown("pixelmill.jobs", logging.DEBUG)
    assert not shown("alembic.runtime.migration", logging.INFO)
    assert shown("alembic.runtime.migration", logging.WARNING)


def test_a_quiet_up_logs_warnings_and_errors_only() -> None:
    level = configure_logging(ObservabilitySettings(log_level="DEBUG"), verbose=False)
    assert level == logging.WARNING
    assert not shown("pixelmill.jobs", logging.INFO)
    assert shown("pixelmill.jobs", logging.WARNING)


def test_verbose_shows_info_including_the_migrations() -> None:
    level = configure_logging(ObservabilitySettings(log_level="ERROR"), verbose=True)
    assert level == logging.INFO
    assert shown("alembic.runtime.migration", logging.INFO)
    assert configure_logging(ObservabilitySettings(log_level="DEBUG"), verbose=True) == (
        logging.DEBUG
    )


def test_an_unknown_level_is_refused_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXELMILL_OBSERVABILITY__LOG_LEVEL", "LOUD")
    with pytest.raises(ValueError):
        Settings()


def test_access_lines_asked_for_show_even_in_a_quiet_up() -> None:
    on = ObservabilitySettings(log_level="DEBUG", access_log=True)
    assert configure_logging(on, verbose=False) == logging.WARNING
    assert shown("pixelmill.access", logging.INFO)
    assert not shown("pixelmill.jobs", logging.INFO)
    # off: an access line is DEBUG, hidden like the rest
    configure_logging(ObservabilitySettings(log_level="DEBUG"), verbose=False)
    assert not shown("pixelmill.access", logging.INFO)
