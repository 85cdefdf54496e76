"""Shared fixtures: settings over a temp data dir, a container, an HTTP client, keys,
and images made on the fly. Server-backed fixtures skip locally when the server is
unreachable and fail in CI (CI=true), so CI can never go green by skipping."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixelmill.backends.metadata.database import Database
from pixelmill.runtime.container import Container, build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.settings import Settings
from tests.helpers import make_key

pytest_plugins = ["tests.servers"]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail an ``exclusive`` test in a parallel run (pytest-xdist) before it starts: it
    restarts a server or raises an alarm that every test running beside it would see
    fail. ``make test`` runs ``-m "not exclusive"`` on both cores, then ``-m exclusive``."""
    if os.environ.get("PYTEST_XDIST_WORKER") and item.get_closest_marker("exclusive"):
        pytest.fail(
            "an exclusive test cannot run beside others: add -m 'not exclusive' to a "
            "parallel run (-n) and run -m exclusive without -n",
            pytrace=False,
        )


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    base: dict[str, object] = {"data_dir": tmp_path / "data"}
    base.update(overrides)
    settings = Settings(**base)  # type: ignore[arg-type]
    _seed_database(settings)
    return settings


@functools.cache
def _migrated() -> bytes:
    """An SQLite database migrated to the newest revision, made once per test session:
    migrating takes a tenth of a second, which hundreds of tests would each pay."""
    with tempfile.TemporaryDirectory(prefix="pm-migrated-") as folder:
        path = Path(folder) / "pixelmill.db"
        db = Database(f"sqlite:///{path}")
        db.upgrade()
        db.dispose()  # the last connection checkpoints the WAL into the file
        assert not Path(f"{path}-wal").exists()
        return path.read_bytes()


def _seed_database(settings: Settings) -> None:
    """Give a test's default SQLite database (not yet made) the migrated schema, as a
    copy; the container then finds it at the newest revision. Other databases, and
    tests of the migrations themselves, migrate as a process does."""
    path = settings.data_dir.resolve() / "pixelmill.db"
    if settings.database.url or path.exists():  # not the default database, or made
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(_migrated())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    c = build_container(settings)
    yield c
    c.close()


@pytest.fixture
def admin_key(container: Container) -> str:
    _, secret = make_key(container, "test admin", role="admin")
    return secret


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def auth(admin_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key}"}
