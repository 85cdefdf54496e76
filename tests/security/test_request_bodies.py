"""Attack: a huge JSON body makes the gateway parse (and hold) all of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container, build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.helpers import make_image, make_key


def _capped_client(tmp_path: Path, limit: int) -> tuple[TestClient, dict[str, str], Container]:
    container = build_container(make_settings(tmp_path, server={"max_json_bytes": limit}))
    _, key = make_key(container, "writer", role="admin")
    return TestClient(create_app(container)), {"Authorization": f"Bearer {key}"}, container


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"kind": "pipeline", "inputs": ["'
    for _ in range(total // 4096):
        yield b"a" * 4096
    yield b'"]}'


def test_a_json_body_over_the_cap_is_refused_with_413_and_the_gateway_keeps_serving(
    tmp_path: Path,
) -> None:
    client, auth, container = _capped_client(tmp_path, limit=64 * 1024)
    with client:
        # declared up front (Content-Length)
        big = b'{"kind": "pipeline", "inputs": ["' + b"a" * 200_000 + b'"]}'
        resp = client.post(
            "/v1/jobs", content=big, headers={**auth, "Content-Type": "application/json"}
        )
        assert resp.status_code == 413
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["status"] == 413
        # streamed without a length (chunked): counted as it arrives
        resp = client.post(
            "/v1/jobs",
            content=_chunks(300_000),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert resp.status_code == 413
        # without a content type FastAPI would parse JSON all the same: capped too
        resp = client.post("/v1/jobs", content=_chunks(300_000), headers=auth)
        assert resp.status_code == 413
        # and a normal request still works
        assert client.get("/healthz").status_code == 200
        assert client.post("/v1/jobs", json={"kind": "pipeline"}, headers=auth).status_code == 422
    container.close()


def test_image_uploads_are_not_capped_by_the_json_limit(tmp_path: Path) -> None:
    client, auth, container = _capped_client(tmp_path, limit=1024)
    body = make_image(256, 256, fmt=".png")
    assert len(body) > 1024
    with client:
        resp = client.post("/v1/images", content=body, headers=auth)
        assert resp.status_code == 201, resp.text
    container.close()
