"""The gateway with its objects in S3 (a real SeaweedFS): what a user does over HTTP works
the same as on the local folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvips
from fastapi.testclient import TestClient

from pixelmill.backends.storage.s3 import S3Storage
from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.settings import StorageSettings
from tests.conftest import make_settings
from tests.helpers import make_image, make_key

pytestmark = pytest.mark.server


@pytest.fixture
def s3_client(tmp_path: Path, s3_settings: StorageSettings) -> Iterator[tuple[TestClient, str]]:
    container = build_container(make_settings(tmp_path, storage=s3_settings))
    assert isinstance(getattr(container.storage, "inner", container.storage), S3Storage)
    _, secret = make_key(container, "test admin", role="admin")
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client, secret
    container.close()


def test_upload_original_render_and_delete_on_s3(s3_client: tuple[TestClient, str]) -> None:
    client, secret = s3_client
    auth = {"Authorization": f"Bearer {secret}"}
    data = make_image(800, 600)
    # given an uploaded image
    created = client.post("/v1/images", content=data, headers=auth)
    assert created.status_code == 201, created.text
    image_id = created.json()["id"]
    # then the original comes back byte for byte and a rendition is made from it
    assert client.get(f"/v1/images/{image_id}/original", headers=auth).content == data
    render = client.get(f"/v1/images/{image_id}/render?w=200&format=png", headers=auth)
    assert render.status_code == 200, render.text
    assert pyvips.Image.new_from_buffer(render.content, "").width == 200
    # and the storage is reported ready
    assert client.get("/readyz").status_code == 200
    # when it is deleted, it is gone
    assert client.delete(f"/v1/images/{image_id}", headers=auth).status_code in (200, 204)
    assert client.get(f"/v1/images/{image_id}/original", headers=auth).status_code == 404


def test_deep_zoom_tiles_of_a_slide_on_s3(
    s3_client: tuple[TestClient, str], tmp_path: Path
) -> None:
    client, secret = s3_client
    auth = {"Authorization": f"Bearer {secret}"}
    # given a pyramidal TIFF stored in S3
    path = tmp_path / "slide.tif"
    pyvips.Image.new_from_buffer(make_image(1200, 800), "").tiffsave(
        str(path), tile=True, pyramid=True, compression="jpeg"
    )
    image_id = client.post("/v1/images", content=path.read_bytes(), headers=auth).json()["id"]
    # then its descriptor and tiles are read from a local copy made once
    assert 'Width="1200"' in client.get(f"/v1/images/{image_id}/dzi.dzi", headers=auth).text
    for tile in ("11/1_0.jpeg", "8/0_0.jpeg"):
        r = client.get(f"/v1/images/{image_id}/dzi_files/{tile}", headers=auth)
        assert r.status_code == 200, r.text
    copies = list((tmp_path / "data" / "slide-copies").iterdir())
    assert len(copies) == 1
    # and deleting the image drops the copy
    assert client.delete(f"/v1/images/{image_id}", headers=auth).status_code == 204
    assert not copies[0].exists()
