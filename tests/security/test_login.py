"""Attacks on logging in: guessing passwords, probing usernames, cross-site requests
riding the session cookie, sessions and keys that outlive a logout or a disabled
account, and credentials read from a stolen database file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata.events import Actor
from pixelmill.backends.metadata.users import digest
from pixelmill.runtime.container import Container, build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.services.gateway.auth import CSRF_HEADER
from tests.conftest import make_settings

PASSWORD = "correct horse battery staple"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[tuple[Container, TestClient]]:
    # no credential cache: a disabled account stops working at the next request
    container = build_container(make_settings(tmp_path, security={"key_cache_s": 0}))
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield container, client
    container.close()


def _user(container: Container, name: str = "alice") -> str:
    user, _ = container.accounts.create_user(Actor(), name, password=PASSWORD)
    return user.id


def _login(client: TestClient, username: str, password: str) -> tuple[int, dict[str, str]]:
    r = client.post("/v1/auth/login", json={"username": username, "password": password})
    return r.status_code, dict(r.headers)


def test_guessing_a_password_locks_the_account_even_for_the_right_password(
    box: tuple[Container, TestClient],
) -> None:
    container, client = box
    _user(container)
    for guess in range(5):
        assert _login(client, "alice", f"wrong guess {guess}")[0] == 401
    status, headers = _login(client, "alice", PASSWORD)
    assert status == 429
    assert int(headers["retry-after"]) > 0
    locked = [e.action for e in container.events.list(security=True)]
    assert "login.locked" in locked and locked.count("login.failed") == 5


def test_unknown_usernames_answer_exactly_like_wrong_passwords(
    box: tuple[Container, TestClient],
) -> None:
    container, client = box
    _user(container)
    wrong = client.post("/v1/auth/login", json={"username": "alice", "password": "nope nope"})
    unknown = client.post("/v1/auth/login", json={"username": "mallory", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.json()["title"] == unknown.json()["title"]


def test_a_cross_site_post_riding_the_session_cookie_is_refused(
    box: tuple[Container, TestClient],
) -> None:
    container, client = box
    _user(container)
    r = client.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    csrf = r.json()["csrf_token"]
    forged = client.post("/v1/studies", json={"name": "forged"})
    assert forged.status_code == 403
    assert client.get("/v1/studies").json()["total"] == 0
    wrong = client.post("/v1/studies", json={"name": "forged"}, headers={CSRF_HEADER: "x" * 43})
    assert wrong.status_code == 403
    ok = client.post("/v1/studies", json={"name": "mine"}, headers={CSRF_HEADER: csrf})
    assert ok.status_code == 201
    assert [s["name"] for s in client.get("/v1/studies").json()["items"]] == ["mine"]


def test_logout_ends_the_session_for_a_stolen_cookie_too(
    box: tuple[Container, TestClient],
) -> None:
    container, client = box
    _user(container)
    client.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    stolen = dict(client.cookies)
    assert client.get("/v1/auth/me").status_code == 200
    csrf = stolen["pm_csrf"]
    assert client.post("/v1/auth/logout", headers={CSRF_HEADER: csrf}).status_code == 204
    assert client.get("/v1/auth/me").status_code == 401
    client.cookies.clear()
    for name, value in stolen.items():
        client.cookies.set(name, value)
    assert client.get("/v1/auth/me").status_code == 401


def test_a_disabled_users_key_and_session_stop_working(
    box: tuple[Container, TestClient],
) -> None:
    container, client = box
    user_id = _user(container)
    _, secret = container.keys.create("alice's key", "write", user_id=user_id)
    _, admin = container.keys.create(
        "admin", "admin", user_id=container.users.create("root", site_role="admin").id
    )
    client.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    assert client.get("/v1/auth/me").status_code == 200
    mine = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/auth/me", headers=mine).status_code == 200
    r = client.patch(
        f"/v1/users/{user_id}",
        json={"disabled": True},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert client.get("/v1/auth/me", headers=mine).status_code == 401
    assert client.get("/v1/auth/me").status_code == 401
    assert _login(client, "alice", PASSWORD)[0] == 401


def test_a_stolen_database_file_holds_no_password_or_key_in_plaintext(
    box: tuple[Container, TestClient], tmp_path: Path
) -> None:
    container, client = box
    user_id = _user(container)
    _, secret = container.keys.create("alice's key", "write", user_id=user_id)
    r = client.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    cookie, csrf = r.cookies["pm_session"], r.json()["csrf_token"]
    container.db.engine.dispose()  # flush the WAL's readers; the files are read as they are
    files = [p for p in (tmp_path / "data").glob("pixelmill.db*") if p.is_file()]
    assert files, "the SQLite database is where the settings put it"
    stolen = b"".join(p.read_bytes() for p in files)
    assert b"alice" in stolen  # the file is the real one
    for needle in (PASSWORD, secret, cookie, csrf):
        assert needle.encode() not in stolen


def test_ended_sessions_are_removed_not_kept_forever(
    box: tuple[Container, TestClient],
) -> None:
    # given a session that ended (expired) long ago, its hash still stored
    container, client = box
    user_id = _user(container)
    _, secret, _csrf = container.users.create_session(user_id, timedelta(seconds=-60))
    assert container.users.session(secret) is None  # it no longer opens anything
    # when anyone logs in
    assert _login(client, "alice", PASSWORD)[0] == 200
    # then the ended session's row is gone; the new one stays
    with container.db.read() as conn:
        stored = {r.id for r in conn.execute(sa.select(tw.sessions.c.id)).all()}
    assert digest(secret) not in stored and len(stored) == 1


def test_a_username_typed_with_capitals_or_spaces_logs_in_and_shares_its_lockout(
    box: tuple[Container, TestClient],
) -> None:
    """Usernames are lower case: "Alice " is alice, for logging in and for guessing."""
    container, client = box
    _user(container)
    status, headers = _login(client, " Alice", PASSWORD)
    assert status == 200
    assert headers.get("set-cookie")  # the session
    for guess in range(5):
        assert _login(client, "ALICE", f"wrong guess {guess}")[0] == 401
    assert _login(client, "alice", PASSWORD)[0] == 429
