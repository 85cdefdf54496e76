"""API keys: writes and originals need a key; roles; revocation; signed render URLs."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container, build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.services.gateway.signing import sign_url
from tests.conftest import make_settings
from tests.helpers import make_image, make_key


def test_writes_need_a_valid_key(client: TestClient, container: Container) -> None:
    data = make_image(50, 50)
    no_key = client.post("/v1/images", content=data)
    assert no_key.status_code == 401
    assert no_key.headers["www-authenticate"].startswith("Bearer")
    bad = client.post("/v1/images", content=data, headers={"Authorization": "Bearer pm_nope"})
    assert bad.status_code == 401
    wrong_scheme = client.post("/v1/images", content=data, headers={"Authorization": "Basic x"})
    assert wrong_scheme.status_code == 401
    assert container.images.count() == 0


def test_read_only_keys_cannot_write(client: TestClient, container: Container) -> None:
    _, secret = make_key(container, "viewer", role="read")
    resp = client.post(
        "/v1/images", content=make_image(50, 50), headers={"Authorization": f"Bearer {secret}"}
    )
    assert resp.status_code == 403


def test_revoked_key_stops_working(client: TestClient, container: Container) -> None:
    record, secret = make_key(container, "temp", role="write")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.post("/v1/images", content=make_image(40, 40), headers=headers).status_code == 201
    container.keys.revoke(record.id)
    assert client.post("/v1/images", content=make_image(41, 40), headers=headers).status_code == 401


def test_a_key_revoked_by_another_process_stops_working_within_the_cache_ttl(
    tmp_path: Path,
) -> None:
    # given a gateway that reuses key checks for 0.3 s, and a key it has just accepted
    settings = make_settings(tmp_path, security={"key_cache_s": 0.3})
    gateway, other = build_container(settings), build_container(settings)
    record, secret = make_key(gateway, "temp", role="write")
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(gateway)) as client:
        assert (
            client.post("/v1/images", content=make_image(40, 40), headers=headers).status_code
            == 201
        )
        # when another process (the CLI, another gateway) revokes it
        other.keys.revoke(record.id)
        time.sleep(0.35)
        # then, once the TTL has passed, this gateway refuses it too
        assert (
            client.post("/v1/images", content=make_image(41, 40), headers=headers).status_code
            == 401
        )
    gateway.close()
    other.close()


def test_images_are_private_by_default(client: TestClient, auth: dict[str, str]) -> None:
    image_id = client.post("/v1/images", content=make_image(60, 60), headers=auth).json()["id"]
    for path in ("", "/original", "/meta", "/render?w=10"):
        assert client.get(f"/v1/images/{image_id}{path}").status_code == 401, path
        assert client.get(f"/v1/images/{image_id}{path}", headers=auth).status_code == 200
    assert client.get("/v1/images").status_code == 401


def test_signed_urls_when_a_signing_key_is_set(tmp_path: Path) -> None:
    container = build_container(make_settings(tmp_path, security={"signing_key": "s3cret"}))
    _, key = make_key(container, "w", role="write")
    with TestClient(create_app(container)) as client:
        image_id = client.post(
            "/v1/images", content=make_image(80, 60), headers={"Authorization": f"Bearer {key}"}
        ).json()["id"]
        path = f"/v1/images/{image_id}/render?w=40&format=webp"
        # anonymous and unsigned: refused; the owner's key needs no signature
        assert client.get(path).status_code == 401
        owned = client.get(path, headers={"Authorization": f"Bearer {key}"})
        assert owned.status_code == 200 and owned.headers["cache-control"].startswith("private")
        signed = sign_url("s3cret", path)
        ok = client.get(signed)
        assert ok.status_code == 200 and ok.headers["content-type"] == "image/webp"
        tampered = signed.replace("w=40", "w=41")
        assert client.get(tampered).status_code == 403
        wrong_key = sign_url("other", path)
        assert client.get(wrong_key).status_code == 403
    container.close()


def test_auth_can_be_switched_off_for_trusted_networks(tmp_path: Path) -> None:
    container = build_container(make_settings(tmp_path, security={"auth_enabled": False}))
    with TestClient(create_app(container)) as client:
        assert client.post("/v1/images", content=make_image(30, 30)).status_code == 201
    container.close()
