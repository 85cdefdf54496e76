"""Helpers for the workspace's gateway tests: users with keys, a study with members."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.helpers import make_key


def user(container: Any, username: str, role: str = "write") -> dict[str, str]:
    """Authorization headers of a (member) user called ``username``."""
    _, secret = make_key(container, f"{username} key", role, username=username)
    return {"Authorization": f"Bearer {secret}"}


def user_id(container: Any, username: str) -> str:
    return str(container.users.by_username(username).id)


def study(
    client: TestClient,
    owner: dict[str, str],
    members: dict[str, str] | None = None,
    container: Any = None,
    **body: Any,
) -> str:
    """A new study owned by ``owner``; ``members``: username -> role."""
    r = client.post("/v1/studies", json={"name": "study", **body}, headers=owner)
    assert r.status_code == 201, r.text
    sid = str(r.json()["id"])
    for username, role in (members or {}).items():
        r = client.put(
            f"/v1/studies/{sid}/members/{user_id(container, username)}",
            json={"role": role},
            headers=owner,
        )
        assert r.status_code == 200, r.text
    return sid
