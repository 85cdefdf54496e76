"""``POST /v1/keys``: your own keys; an admin may make one for another user, and a field
the route does not know is refused rather than ignored."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.integration.gateway.workspace_helpers import user, user_id


def _me(client: TestClient, secret: str) -> dict[str, Any]:
    resp = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_an_admin_makes_a_key_for_another_user(
    client: TestClient, container: Any, auth: dict[str, str]
) -> None:
    # given a member, Ana
    user(container, "ana")
    ana = user_id(container, "ana")
    # when an admin makes a key with her user_id
    body = {"name": "ana's pipeline", "role": "read", "user_id": ana}
    resp = client.post("/v1/keys", json=body, headers=auth)
    # then the key is hers: it acts as Ana, and her key list shows it
    assert resp.status_code == 201, resp.text
    assert resp.json()["user_id"] == ana
    assert _me(client, resp.json()["secret"])["user"]["username"] == "ana"
    listed = client.get(f"/v1/keys?user_id={ana}", headers=auth).json()["items"]
    assert resp.json()["id"] in [k["id"] for k in listed]
    # and an unknown user is 404, not a key of nobody's
    body["user_id"] = "0" * 32
    assert client.post("/v1/keys", json=body, headers=auth).status_code == 404


def test_a_member_cannot_make_a_key_for_someone_else(
    client: TestClient, container: Any, auth: dict[str, str]
) -> None:
    ana = user(container, "ana")
    user(container, "olga")
    olga = user_id(container, "olga")
    before = client.get(f"/v1/keys?user_id={olga}", headers=auth).json()["items"]
    # when Ana names Olga: 404, exactly as listing Olga's keys answers her
    body = {"name": "sneaky", "role": "write", "user_id": olga}
    assert client.post("/v1/keys", json=body, headers=ana).status_code == 404
    assert client.get(f"/v1/keys?user_id={olga}", headers=auth).json()["items"] == before
    # while naming herself is the same as naming no one
    own = client.post("/v1/keys", json={**body, "user_id": user_id(container, "ana")}, headers=ana)
    assert own.status_code == 201, own.text
    assert _me(client, own.json()["secret"])["user"]["username"] == "ana"


def test_a_key_for_a_disabled_user_is_refused(
    client: TestClient, container: Any, auth: dict[str, str]
) -> None:
    user(container, "vic")
    vic = user_id(container, "vic")
    assert client.patch(f"/v1/users/{vic}", json={"disabled": True}, headers=auth).is_success
    resp = client.post("/v1/keys", json={"name": "k", "user_id": vic}, headers=auth)
    assert resp.status_code == 422, resp.text
    assert "disabled" in resp.json()["detail"]


def test_an_unknown_field_is_refused_not_ignored(client: TestClient, auth: dict[str, str]) -> None:
    resp = client.post("/v1/keys", json={"name": "k", "expires_at": "2030-01-01"}, headers=auth)
    assert resp.status_code == 422, resp.text
    assert "expires_at" in resp.text
