"""The lockout must not tell which usernames exist: a real user and an unknown name get
the same answers, the same Retry-After and the same server-side delays, failure after
failure (docs/security.md: "unknown usernames answer exactly like wrong passwords")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixelmill.backends.metadata.events import Actor
from pixelmill.errors import RateLimited
from pixelmill.runtime.container import Container, build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.services.workspace import accounts as accounts_module
from pixelmill.services.workspace.accounts import LoginFailed
from tests.conftest import make_settings

PASSWORD = "correct horse battery staple"


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Container, TestClient]]:
    # a still clock for the lock: Retry-After does not drift with the answers' delays
    still = datetime.now(UTC)
    monkeypatch.setattr(accounts_module, "now", lambda: still)
    container = build_container(make_settings(tmp_path, security={"key_cache_s": 0}))
    container.accounts.create_user(Actor(), "alice", password=PASSWORD)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield container, client
    container.close()


def _answers(client: TestClient, username: str) -> list[tuple[int, str | None, str]]:
    out = []
    for guess in range(7):
        r = client.post(
            "/v1/auth/login", json={"username": username, "password": f"wrong guess {guess}"}
        )
        out.append((r.status_code, r.headers.get("retry-after"), r.json()["detail"]))
    return out


def test_a_real_and_an_unknown_username_answer_alike_failure_after_failure(
    box: tuple[Container, TestClient],
) -> None:
    _container, client = box
    real, unknown = _answers(client, "alice"), _answers(client, "mallory")
    assert real == unknown
    assert [status for status, _, _ in real] == [401] * 5 + [429] * 2


def test_the_delays_grow_alike_for_a_real_and_an_unknown_username(
    box: tuple[Container, TestClient],
) -> None:
    container, _client = box

    def delays(username: str) -> list[float | str]:
        out: list[float | str] = []
        for _ in range(6):
            try:
                container.accounts.login(username, "wrong password!")
            except LoginFailed as exc:
                out.append(exc.delay_s)
            except RateLimited as exc:
                out.append(f"locked {exc.retry_after}")
        return out

    real, unknown = delays("alice"), delays("nobody")
    assert real == unknown
    assert real[:5] == [0.25, 0.5, 0.75, 1.0, 1.25]


def test_the_right_password_clears_the_count_and_a_reset_ends_a_lock(
    box: tuple[Container, TestClient],
) -> None:
    container, client = box
    for _ in range(4):
        assert (
            client.post("/v1/auth/login", json={"username": "alice", "password": "no"}).status_code
            == 401
        )
    ok = client.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    assert ok.status_code == 200
    assert container.users.login_throttle("alice") == (0, None)
    for _ in range(5):
        client.post("/v1/auth/login", json={"username": "alice", "password": "no"})
    locked = client.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429
    user = container.users.by_username("alice")
    container.accounts.reset_password(Actor(), user.id, PASSWORD)
    again = client.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    assert again.status_code == 200
