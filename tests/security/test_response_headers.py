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


def test_every_answer_forbids_inline_script_plugins_and_framing(client: TestClient) -> None:
    """A script injected into any answer (an SVG, an error echoing input) cannot run."""
    for resp in (
        client.get("/healthz"),
        client.get("/v1/images/nope"),
        client.get("/openapi.json"),
    ):
        csp = resp.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe" not in csp


def test_the_api_docs_load_nothing_from_another_origin(client: TestClient) -> None:
    import base64
    import hashlib
    import re

    page = client.get("/docs")
    assert page.status_code == 200
    # no CDN: every script and style is this server's
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs-static/") for s in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200
    # the one inline start-up script runs by its hash; no other inline script could
    csp = page.headers["content-security-policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in script_src
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    assert "frame-ancestors 'none'" in csp
    assert client.get("/redoc").status_code == 404  # (it would load from a CDN)


def test_metrics_answer_only_the_scraper_when_a_token_is_set(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, observability={"metrics_token": "scrape-secret-1"})
    container = build_container(settings)
    with TestClient(create_app(container)) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401 and "pixelmill_" not in wrong.text
        scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"})
        assert scraped.status_code == 200 and "pixelmill_" in scraped.text
    container.close()


def test_metrics_stay_open_without_a_token(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200
