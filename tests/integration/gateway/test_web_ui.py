"""The browser UI at /: deep links open the app, hashed assets cache for a year, the
page revalidates, and API paths keep their own answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pixelmill.services.gateway import problems
from pixelmill.services.web import ui

INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head></html>'


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A build as ``npm run build`` emits it: index.html, hashed assets, a public file."""
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-abc123.js").write_text("console.log('app')")
    (root / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


def _app(root: Path) -> TestClient:
    app = FastAPI()
    problems.install(app)

    @app.post("/v1/things")
    def make() -> dict[str, str]:
        return {"made": "yes"}

    ui.install(app, root)
    return TestClient(app)


def test_deep_links_answer_the_app_page_uncached(build: Path) -> None:
    client = _app(build)
    for path in ("/", "/studies", "/studies/abc?tab=files", "/viewer/img1"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.text == INDEX
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["content-type"].startswith("text/html")


def test_hashed_assets_are_immutable_and_missing_ones_are_404(build: Path) -> None:
    client = _app(build)
    r = client.get("/assets/index-abc123.js")
    assert r.status_code == 200 and r.text == "console.log('app')"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/favicon.svg").headers["cache-control"] == "public, max-age=3600"
    missing = client.get("/assets/index-gone.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_paths_cannot_escape_the_build(build: Path) -> None:
    client = _app(build)
    for path in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"):
        r = client.get(path)
        assert "outside the build" not in r.text, path


def test_api_paths_keep_their_answers(build: Path) -> None:
    client = _app(build)
    assert client.get("/v1/nothing-here").status_code == 404
    assert client.get("/v1/nothing-here").headers["content-type"] == "application/problem+json"
    assert client.get("/v1/things").status_code == 405  # a POST route, not the app page
    assert client.post("/v1/things").json() == {"made": "yes"}
    assert client.post("/studies").status_code in (404, 405)  # pages are GET only
    assert client.get("/metrics").status_code == 404  # not mounted here: not the app either


def test_without_a_build_the_page_says_how_to_build_it(tmp_path: Path) -> None:
    client = _app(tmp_path / "empty")
    r = client.get("/studies")
    assert r.status_code == 404
    assert "make up" in r.json()["detail"]


def test_the_real_gateway_serves_the_app_beside_the_api(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/v1/auth/login").status_code == 405
    assert client.get("/v1/unknown").status_code == 404
    page = client.get("/studies/some-id")
    if ui.built():
        assert page.status_code == 200 and '<div id="app">' in page.text
        assert "<script>" not in page.text  # CSP: no inline script
    else:
        assert page.status_code == 404 and "not built" in page.json()["detail"]
