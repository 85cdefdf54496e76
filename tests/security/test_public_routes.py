"""Attack: find a route that answers without credentials. Every route of the app (the
OpenAPI operations and the ones outside it) is called anonymously, with real ids; the
ones that do not answer 401 must be exactly the public list below. A new public route
fails this test until someone decides it belongs here (and says why)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from libthumbor import CryptoURL

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.services.gateway.signing import sign_url
from tests.conftest import make_settings
from tests.helpers import make_image, make_key

#: what anyone may call, and why
PUBLIC = {
    "GET /healthz": "liveness probe, no data",
    "GET /livez": "liveness probe, no data",
    "GET /readyz": "readiness probe, check names only",
    "POST /v1/auth/login": "how a browser gets a session",
    "GET /v1/operations": "the catalogue of image operations (API documentation)",
    "GET /v1/job-kinds": "the catalogue of job kinds (API documentation)",
    "GET /openapi.json": "the API description",
    "GET /docs": "Swagger UI",
    "GET /docs-static": "Swagger UI's files",
    "GET /{path:path}": "the web UI's files (its app shell; the data comes from the API)",
    # thumbor URLs: without a valid signature they answer 403, never pixels
    "GET /unsafe/{options}": "thumbor URLs, off unless security.thumbor_allow_unsafe",
}
# (signed thumbor URLs, /<28-character signature>/..., are hidden from the OpenAPI — as a
# template they would claim the web app's paths — and checked in the test below)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A production-like gateway (a /metrics token, a signing key) with one image."""
    settings = make_settings(
        tmp_path,
        observability={"metrics_token": "scraper-token"},
        security={"signing_key": "sign-0123456789abcdef", "thumbor_key": "thumbor-0123456789"},
    )
    container = build_container(settings)
    _, key = make_key(container, "w", role="write")
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        image = client.post(
            "/v1/images", content=make_image(64, 48), headers={"Authorization": f"Bearer {key}"}
        ).json()["id"]
        sig = CryptoURL(key="x").generate(width=10, height=10, image_url=image).split("/")[1]
        yield (
            client,
            {
                "image_id": image,
                "signature": sig,
                "options": "100x100/" + image,
                "path": "studies/x",  # a deep link of the web UI
            },
        )
    container.close()


def every_route(client: TestClient) -> list[tuple[str, str]]:
    app: Any = client.app
    routes = [(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops]
    # and what is mounted outside the document (docs, the web UI): top-level routes
    outside = [("GET", r.path) for r in app.routes if type(r).__name__ != "_IncludedRouter"]
    return routes + outside


def test_only_the_public_list_answers_without_credentials(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, ids = world
    answered = {}
    for method, path in every_route(client):
        url = re.sub(r"\{([^}:]+)(:path)?\}", lambda m: ids.get(m.group(1), "x"), path)
        if path == "/docs-static":
            url = "/docs-static/swagger-ui.css"
        resp = client.request(
            method, url, content=b"{}", headers={"Content-Type": "application/json"}
        )
        assert resp.status_code < 500, (method, path, resp.text)
        if resp.status_code != 401:
            answered[f"{method} {path}"] = resp.status_code
    assert set(answered) == set(PUBLIC), answered


def test_signed_public_routes_give_nothing_without_a_valid_signature(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    client, ids = world
    image = ids["image_id"]
    render = f"/v1/images/{image}/render?w=32"
    assert client.get(render).status_code == 401
    assert client.get(render + "&sig=forged").status_code in (401, 403)
    # a render answers anonymously only when signed (so it is not in PUBLIC: 401 without)
    signed = sign_url("sign-0123456789abcdef", render)
    ok = client.get(signed)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("image/")
    forged = CryptoURL(key="not-the-key").generate(width=100, height=100, image_url=image)
    assert client.get(forged).status_code == 403
    genuine = CryptoURL(key="thumbor-0123456789").generate(width=100, height=100, image_url=image)
    assert client.get(genuine).status_code == 200
    assert client.get(f"/unsafe/{ids['options']}").status_code == 403
    assert client.get("/metrics").status_code == 401
    metrics = client.get("/metrics", headers={"Authorization": "Bearer scraper-token"})
    assert metrics.status_code == 200
