"""A gateway for the signed-URL tests: the settings' signing keys, one image uploaded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.settings import Settings
from tests.helpers import make_image, make_key


@contextmanager
def signing_gateway(settings: Settings) -> Iterator[tuple[TestClient, str]]:
    """A test client of a gateway on ``settings`` and the id of an 80x60 image on it."""
    container = build_container(settings)
    _, key = make_key(container, "w", role="write")
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        image = client.post(
            "/v1/images", content=make_image(80, 60), headers={"Authorization": f"Bearer {key}"}
        ).json()["id"]
        yield client, image
    container.close()
