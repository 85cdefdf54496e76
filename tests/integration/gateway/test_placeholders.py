"""Placeholders: a BlurHash and an LQIP data URI per image, from their own endpoint and
in the image's metadata, that look like the picture."""

from __future__ import annotations

import base64

import blurhash as reference
import numpy as np
import pytest
import pyvips
from fastapi.testclient import TestClient

from pixelmill.imaging.placeholder import blurhash
from tests.helpers import make_image


def halves(width: int = 300, height: int = 200, fmt: str = ".jpg") -> bytes:
    """Red on the left, blue on the right."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:, : width // 2] = (220, 30, 30)
    arr[:, width // 2 :] = (30, 30, 220)
    return bytes(pyvips.Image.new_from_array(arr).copy(interpretation="srgb").write_to_buffer(fmt))


def upload(client: TestClient, auth: dict[str, str], data: bytes) -> str:
    resp = client.post("/v1/images", content=data, headers=auth)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def test_the_placeholder_looks_like_the_picture(client: TestClient, auth: dict[str, str]) -> None:
    image_id = upload(client, auth, halves())
    resp = client.get(f"/v1/images/{image_id}/placeholder", headers=auth)
    assert resp.status_code == 200
    body = resp.json()
    # the BlurHash, decoded by the reference implementation, is red left and blue right
    decoded = np.asarray(reference.decode(body["blurhash"], 30, 20))
    assert decoded[10, 3, 0] > 150 > decoded[10, 3, 2]
    assert decoded[10, 26, 2] > 150 > decoded[10, 26, 0]
    # the LQIP is a tiny WebP of the same picture
    prefix = "data:image/webp;base64,"
    assert body["lqip"].startswith(prefix) and len(body["lqip"]) < 1000
    tiny = pyvips.Image.new_from_buffer(base64.b64decode(body["lqip"][len(prefix) :]), "")
    assert tiny.width == 16
    pixels = np.asarray(tiny.numpy())
    assert pixels[5, 1, 0] > 150 and pixels[5, 14, 2] > 150


def test_the_image_metadata_carries_the_same_placeholder(
    client: TestClient, auth: dict[str, str]
) -> None:
    image_id = upload(client, auth, make_image(400, 300))
    meta = client.get(f"/v1/images/{image_id}", headers=auth).json()
    alone = client.get(meta["links"]["placeholder"], headers=auth).json()
    assert meta["placeholder"] == {"blurhash": alone["blurhash"], "lqip": alone["lqip"]}


def test_placeholders_are_private_like_the_image(client: TestClient, auth: dict[str, str]) -> None:
    image_id = upload(client, auth, make_image(100, 80))
    assert client.get(f"/v1/images/{image_id}/placeholder").status_code in (401, 404)


@pytest.mark.parametrize(("rows", "cols", "x", "y"), [(32, 24, 4, 3), (20, 31, 3, 5), (9, 9, 1, 1)])
def test_blurhash_equals_the_reference_encoder(rows: int, cols: int, x: int, y: int) -> None:
    pixels = np.random.default_rng(rows).integers(0, 256, (rows, cols, 3)).astype(np.uint8)
    expected = reference.encode(pixels.tolist(), components_x=x, components_y=y)
    assert blurhash(pixels, x_components=x, y_components=y) == expected


def test_grey_and_transparent_images_get_placeholders(
    client: TestClient, auth: dict[str, str]
) -> None:
    for data in (
        make_image(120, 90, bands=1, fmt=".png"),
        make_image(120, 90, bands=4, fmt=".png"),
    ):
        image_id = upload(client, auth, data)
        assert client.get(f"/v1/images/{image_id}/placeholder", headers=auth).status_code == 200
