"""A gateway caches successful authentications for ``security.key_cache_s`` (2 s): a
demotion, a disable or a new password made through the same process must still end
the old access at the very next request, not up to 2 s later."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixelmill.backends.metadata.events import Actor
from pixelmill.runtime.container import Container, build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.services.gateway.auth import CSRF_HEADER
from tests.conftest import make_settings

PASSWORD = "correct horse battery staple"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[tuple[Container, TestClient, dict[str, str]]]:
    # a long credential cache: nothing here passes by an entry running out meanwhile
    container = build_container(make_settings(tmp_path, security={"key_cache_s": 30}))
    root = container.users.create("root", site_role="admin")
    _, admin = container.keys.create("root", "admin", user_id=root.id)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield container, client, {"Authorization": f"Bearer {admin}"}
    container.close()


def _dave(container: Container, client: TestClient, role: str = "admin") -> tuple[str, str, str]:
    """dave, his key, and his session cookie (logged in; the cache holds both)."""
    user, _ = container.accounts.create_user(
        Actor(),
        "dave",
        password=PASSWORD,
        site_role=role,  # type: ignore[arg-type]
    )
    _, key = container.keys.create("dave's", role, user_id=user.id)  # type: ignore[arg-type]
    r = client.post("/v1/auth/login", json={"username": "dave", "password": PASSWORD})
    assert r.status_code == 200
    return user.id, key, r.cookies["pm_session"]


def _as_key(client: TestClient, key: str, path: str) -> int:
    return client.get(path, headers={"Authorization": f"Bearer {key}"}).status_code


def _as_session(client: TestClient, cookie: str, path: str) -> int:
    client.cookies.clear()
    client.cookies.set("pm_session", cookie)
    try:
        return client.get(path).status_code
    finally:
        client.cookies.clear()


def test_a_demoted_admin_loses_admin_at_the_next_request(
    box: tuple[Container, TestClient, dict[str, str]],
) -> None:
    container, client, admin = box
    dave, key, cookie = _dave(container, client)
    assert _as_key(client, key, "/v1/users") == 200  # both cached as admins
    assert _as_session(client, cookie, "/v1/users") == 200
    r = client.patch(f"/v1/users/{dave}", json={"site_role": "member"}, headers=admin)
    assert r.status_code == 200 and r.json()["site_role"] == "member"
    assert _as_key(client, key, "/v1/users") == 403
    assert _as_session(client, cookie, "/v1/users") == 403
    assert _as_key(client, key, "/v1/auth/me") == 200  # still a member


def test_a_disabled_users_key_and_session_end_at_the_next_request(
    box: tuple[Container, TestClient, dict[str, str]],
) -> None:
    container, client, admin = box
    dave, key, cookie = _dave(container, client, "member")
    assert _as_key(client, key, "/v1/auth/me") == 200
    assert _as_session(client, cookie, "/v1/auth/me") == 200
    r = client.patch(f"/v1/users/{dave}", json={"disabled": True}, headers=admin)
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert _as_key(client, key, "/v1/auth/me") == 401
    assert _as_session(client, cookie, "/v1/auth/me") == 401


def test_a_password_reset_by_an_admin_ends_the_session_at_the_next_request(
    box: tuple[Container, TestClient, dict[str, str]],
) -> None:
    container, client, admin = box
    dave, _key, cookie = _dave(container, client, "member")
    assert _as_session(client, cookie, "/v1/auth/me") == 200
    r = client.post(f"/v1/users/{dave}/password", headers=admin)
    assert r.status_code == 200
    assert _as_session(client, cookie, "/v1/auth/me") == 401


def test_changing_your_own_password_ends_your_other_sessions_at_the_next_request(
    box: tuple[Container, TestClient, dict[str, str]],
) -> None:
    container, client, _admin = box
    _dave_id, _key, stolen = _dave(container, client, "member")
    r = client.post("/v1/auth/login", json={"username": "dave", "password": PASSWORD})
    mine, csrf = r.cookies["pm_session"], r.json()["csrf_token"]
    assert _as_session(client, stolen, "/v1/auth/me") == 200
    client.cookies.set("pm_session", mine)
    r = client.post(
        "/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers={CSRF_HEADER: csrf},
    )
    assert r.status_code == 204
    assert _as_session(client, stolen, "/v1/auth/me") == 401


def test_a_change_in_another_process_ends_access_within_the_cache_ttl(
    box: tuple[Container, TestClient, dict[str, str]],
) -> None:
    # given dave's key cached by this gateway
    container, client, _admin = box
    dave, key, _cookie = _dave(container, client, "member")
    assert _as_key(client, key, "/v1/auth/me") == 200
    # when another process (the CLI: its own repository, its own counter) disables him
    from pixelmill.backends.metadata.users import UserRepository

    UserRepository(container.db).set_disabled(dave, True)
    # then this gateway still answers from its cache, until the TTL passes
    assert _as_key(client, key, "/v1/auth/me") == 200
    cache = client.app.state.key_cache  # type: ignore[attr-defined]
    cache._items.expire(time=cache._items.timer() + cache.ttl_s + 1)
    assert _as_key(client, key, "/v1/auth/me") == 401
