"""Remote sources, edge cases: a malformed redirect from an allowed origin is the
``502 source-unavailable`` of any broken origin (not a 500), and a render of a remote
source cannot watermark with a stored image the caller may not read."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.helpers import make_image
from tests.security.people import Person, person

PHOTO = make_image(64, 48)


class _Origin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        address: Any = self.server.server_address
        port = address[1]
        if self.path == "/photo.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(PHOTO)))
            self.end_headers()
            self.wfile.write(PHOTO)
            return
        self.send_response(302)  # "http:" without "//": httpx cannot parse it
        self.send_header("Location", f"http:127.0.0.1:{port}/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def origin() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def gateway(tmp_path: Path, origin: int) -> Iterator[tuple[TestClient, Person, Person]]:
    settings = make_settings(
        tmp_path,
        sources={
            "enabled": True,
            "timeout_s": 2,
            "allowed_hosts": [f"localhost:{origin}"],
            "allowed_networks": ["127.0.0.1/32", "::1/128"],
        },
    )
    container = build_container(settings)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client, person(container, client, "alice"), person(container, client, "bob")
    container.close()


def test_a_malformed_redirect_is_a_bad_origin_not_a_server_error(
    gateway: tuple[TestClient, Person, Person], origin: int
) -> None:
    _, _, bob = gateway
    url = quote(f"http://localhost:{origin}/bad-redirect", safe="")
    answer = bob.get(f"/v1/sources/render?url={url}&w=32")
    assert answer.status_code == 502, answer.text
    assert answer.json()["type"].endswith("/source-unavailable")


def test_a_remote_source_cannot_be_watermarked_with_someone_elses_image(
    gateway: tuple[TestClient, Person, Person], origin: int
) -> None:
    _, alice, bob = gateway
    secret = alice.post("/v1/images", content=make_image(40, 30, seed=5)).json()["id"]
    mark = bob.post("/v1/images", content=make_image(40, 30, seed=6)).json()["id"]
    url = quote(f"http://localhost:{origin}/photo.jpg", safe="")
    base = f"/v1/sources/render?url={url}&w=64&format=png&wm_scale=1&wm_opacity=1"
    stolen = bob.get(f"{base}&wm={secret}")
    unknown = bob.get(f"{base}&wm=img_doesnotexist0000000000")
    assert stolen.status_code == unknown.status_code == 404, stolen.text
    assert stolen.json()["detail"].split("'")[0] == unknown.json()["detail"].split("'")[0]
    assert bob.get(f"{base}&wm={mark}").status_code == 200
