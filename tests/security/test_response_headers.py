"""Attacks on what responses say: a shared cache serving private renders to anyone,
readiness answers that leak internals, pages framed or MIME-sniffed by a browser."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.helpers import make_image, make_key


def _upload(client: TestClient, auth: dict[str, str]) -> str:
    resp = client.post("/v1/images", content=make_image(64, 48), headers=auth)
    assert resp.status_code in (200, 201), resp.text
    return str(resp.json()["id"])


def test_a_shared_cache_is_told_not_to_keep_a_render_that_needs_a_key(tmp_path: Path) -> None:
    # given the default deployment, where anonymous clients may not read images
    container = build_container(make_settings(tmp_path))
    _, key = make_key(container, "reader", role="admin")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(container)) as client:
        image = _upload(client, auth)
        # when a key holder renders it
        resp = client.get(f"/v1/images/{image}/render?w=32", headers=auth)
        # then a CDN or proxy in between must not serve that render to others
        assert resp.status_code == 200
        assert resp.headers["cache-control"].startswith("private,")
        assert client.get(f"/v1/images/{image}/render?w=32").status_code == 401
    container.close()


def test_a_render_anyone_may_fetch_stays_cacheable_by_shared_caches(tmp_path: Path) -> None:
    # given a server that opted in to anonymous renders
    container = build_container(make_settings(tmp_path, security={"public_read": True}))
    _, key = make_key(container, "owner", role="write")
    with TestClient(create_app(container)) as client:
        image = _upload(client, {"Authorization": f"Bearer {key}"})
        resp = client.get(f"/v1/images/{image}/render?w=32")
        assert resp.status_code == 200
        assert resp.headers["cache-control"].startswith("public,")
        # but never a full-size source, unstripped metadata, a listing or the metadata
        for path in (
            "/render",
            "/render?w=32&strip=false",
            "/render?w=4000",
            "/render?w=2048&dpr=2",  # the anonymous size cap holds after dpr, zoom, padding
            "/render?w=1024&zoom=4",
            "/render?w=2000&pad=100",
            "/render?zoom=2",
            "/meta",
            "",
        ):
            assert client.get(f"/v1/images/{image}{path}").status_code == 401, path
        assert client.get("/v1/images").status_code == 401
    container.close()


def test_readiness_names_the_failing_dependency_but_not_its_address_or_driver_text(
    tmp_path: Path,
) -> None:
    # given a cache that cannot be reached at a private address
    settings = make_settings(tmp_path, cache={"url": "redis://127.0.0.1:1/0"})
    container = build_container(settings)
    with TestClient(create_app(container)) as client:
        ready = client.get("/readyz")
    container.close()
    # then the probe says which dependency is down, and nothing an attacker can map
    assert ready.status_code == 503
    assert ready.json()["checks"]["cache"] == "unavailable"
    assert "127.0.0.1" not in ready.text and "Error" not in ready.text


def test_every_answer_forbids_sniffing_framing_and_referrers(client: TestClient) -> None:
    for resp in (
        client.get("/healthz"),
        client.get("/v1/images/does-not-exist"),  # errors too
        client.post("/v1/jobs", json={"kind": "pipeline"}),
    ):
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in resp.headers  # plain HTTP here


def test_hsts_is_sent_where_tls_terminates(client: TestClient) -> None:
    resp = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert resp.headers["strict-transport-security"].startswith("max-age=31536000")


def test_other_local_users_cannot_read_the_database_or_its_journal(tmp_path: Path) -> None:
    # given a fresh embedded data dir, after a write (so the WAL exists)
    container = build_container(make_settings(tmp_path))
    make_key(container, "someone", role="read")
    files = [p for p in (tmp_path / "data").iterdir() if p.name.startswith("pixelmill.db")]
    modes = {p.name: p.stat().st_mode & 0o777 for p in files}
    container.close()
    # then the database, its WAL and shared memory are the owner's alone
    assert "pixelmill.db" in modes and any(n.endswith("-wal") for n in modes), modes
    assert set(modes.values()) == {0o600}, modes
