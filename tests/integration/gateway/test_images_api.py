"""Uploading, listing, reading and deleting images over HTTP."""

from __future__ import annotations

import hashlib

import pytest
import pyvips
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container
from tests.helpers import make_image
from tests.jobs_helpers import finished_job


@pytest.fixture(autouse=True)
def _logged_in(client: TestClient, auth: dict[str, str]) -> None:
    """These tests render as a logged-in user (images are private by default)."""
    client.headers.update(auth)


def _upload(client: TestClient, auth: dict[str, str], data: bytes, **kw: object) -> dict:
    resp = client.post("/v1/images", content=data, headers=auth, **kw)  # type: ignore[arg-type]
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def test_raw_upload_is_described_and_content_addressed(
    client: TestClient, auth: dict[str, str]
) -> None:
    data = make_image(640, 480, fmt=".png")
    resp = client.post("/v1/images", content=data, headers={**auth, "Content-Type": "image/jpeg"})
    # the claimed content type is ignored: the bytes say PNG
    assert resp.status_code == 201
    body = resp.json()
    assert body["format"] == "png"
    assert (body["width"], body["height"], body["bands"], body["bit_depth"]) == (640, 480, 3, 8)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert resp.headers["location"] == f"/v1/images/{body['id']}"
    # uploading the same bytes again returns the same image, with 200 not 201
    again = client.post("/v1/images", content=data, headers=auth)
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]


def test_multipart_upload_keeps_the_filename(client: TestClient, auth: dict[str, str]) -> None:
    data = make_image(100, 80, fmt=".webp")
    resp = client.post(
        "/v1/images", files={"file": ("cells.webp", data, "image/webp")}, headers=auth
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["filename"] == "cells.webp"
    assert resp.json()["format"] == "webp"


def test_original_round_trips_byte_for_byte_with_an_etag(
    client: TestClient, auth: dict[str, str]
) -> None:
    data = make_image(120, 90)
    image_id = _upload(client, auth, data)["id"]
    got = client.get(f"/v1/images/{image_id}/original", headers=auth)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/jpeg"
    again = client.get(
        f"/v1/images/{image_id}/original", headers={**auth, "If-None-Match": got.headers["etag"]}
    )
    assert again.status_code == 304


def test_list_is_paginated_newest_first(client: TestClient, auth: dict[str, str]) -> None:
    ids = [_upload(client, auth, make_image(50, 40, seed=i))["id"] for i in range(5)]
    first = client.get("/v1/images", params={"limit": 2}).json()
    assert [i["id"] for i in first["items"]] == ids[::-1][:2]
    assert first["total"] == 5
    second = client.get(first["next"]).json()
    assert [i["id"] for i in second["items"]] == ids[::-1][2:4]
    third = client.get(second["next"]).json()
    assert [i["id"] for i in third["items"]] == ids[:1]
    assert third["next"] is None


def test_list_tells_uploads_from_what_jobs_made(client: TestClient, auth: dict[str, str]) -> None:
    # given two uploads and a job that flipped one of them
    uploads = [_upload(client, auth, make_image(50, 40, seed=i))["id"] for i in range(2)]
    job = client.post("/v1/jobs", json={"inputs": [uploads[0]], "pipeline": [{"op": "flip"}]})
    assert job.status_code == 202, job.text
    done = finished_job(client, job.json()["id"], timeout=60)
    assert done["state"] == "succeeded", done
    result = done["tasks"][0]["result_image"]

    def listed(**params: object) -> tuple[list[str], int]:
        body = client.get("/v1/images", params={"limit": 1, **params}).json()
        ids = [i["id"] for i in body["items"]]
        while body["next"]:  # each page keeps the filter
            body = client.get(body["next"]).json()
            ids += [i["id"] for i in body["items"]]
        return ids, body["total"]

    # then the uploads, the results, or both, each counted as listed
    assert listed(origin="upload") == (uploads[::-1], 2)
    assert listed(origin="result") == ([result], 1)
    assert listed() == ([result, *uploads[::-1]], 3)
    assert client.get("/v1/images", params={"origin": "mask"}).status_code == 422


def test_meta_exposes_exif(client: TestClient, auth: dict[str, str]) -> None:
    image = pyvips.Image.new_from_buffer(make_image(60, 40), "").copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 3)
    data = bytes(image.write_to_buffer(".jpg"))
    image_id = _upload(client, auth, data)["id"]
    meta = client.get(f"/v1/images/{image_id}/meta").json()
    assert meta["orientation"] == 3
    assert meta["exif"]["Orientation"] == "3"


def test_delete_removes_row_and_object(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    body = _upload(client, auth, make_image(64, 64))
    key = f"originals/{body['sha256'][:2]}/{body['sha256']}"
    assert container.storage.exists(key)
    assert client.delete(f"/v1/images/{body['id']}", headers=auth).status_code == 204
    assert client.get(f"/v1/images/{body['id']}").status_code == 404
    assert not container.storage.exists(key)


def test_sixteen_bit_and_multipage_tiff_upload_and_render(
    client: TestClient, auth: dict[str, str]
) -> None:
    import numpy as np

    arr = (np.linspace(0, 65535, 200 * 150).reshape(150, 200)).astype(np.uint16)
    page = pyvips.Image.new_from_array(arr).copy(interpretation="grey16")
    stack = pyvips.Image.arrayjoin([page, page], across=1).copy()
    stack.set_type(pyvips.GValue.gint_type, "page-height", 150)
    data = bytes(stack.write_to_buffer(".tif"))
    body = _upload(client, auth, data)
    assert (body["format"], body["bit_depth"], body["pages"], body["height"]) == (
        "tiff",
        16,
        2,
        150,
    )
    out = client.get(f"/v1/images/{body['id']}/render", params={"w": 100, "format": "jpeg"})
    assert out.status_code == 200
    rendered = pyvips.Image.new_from_buffer(out.content, "")
    assert (rendered.width, rendered.height) == (100, 75)
    # the 16-bit ramp (dark top, bright bottom) is scaled to 8 bits, not clipped
    pixels = rendered.numpy()
    assert pixels[:10].mean() < 40 and pixels[-10:].mean() > 215


def test_gif_first_frame_and_avif_uploads(client: TestClient, auth: dict[str, str]) -> None:
    gif = _upload(client, auth, make_image(90, 60, fmt=".gif"))
    assert gif["format"] == "gif"
    out = client.get(f"/v1/images/{gif['id']}/render", params={"w": 45})
    assert out.headers["content-type"] == "image/png"  # GIF renders default to PNG
    avif = _upload(client, auth, make_image(90, 60, fmt=".avif"))
    assert (avif["format"], avif["width"]) == ("avif", 90)


def test_ome_tiff_pixel_size_is_recorded(
    client: TestClient, auth: dict[str, str], tmp_path: object
) -> None:
    import io

    import numpy as np
    import tifffile

    buf = io.BytesIO()
    data = (np.arange(64 * 48) % 4096).astype(np.uint16).reshape(48, 64)
    tifffile.imwrite(buf, data, ome=True, metadata={"PhysicalSizeX": 0.325, "PhysicalSizeY": 0.325})
    body = _upload(client, auth, buf.getvalue())
    assert body["format"] == "tiff"
    assert body["pixel_size_um"] == 0.325
    assert body["bit_depth"] == 16
