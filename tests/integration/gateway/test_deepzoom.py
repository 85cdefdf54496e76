"""The deep-zoom tile route: a whole slide over the render pixel limit opens (descriptor
and tiles from its pyramid), with the render's access rules, caching and signatures."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvips
from fastapi.testclient import TestClient

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.services.gateway.signing import sign_url
from tests.conftest import make_settings
from tests.helpers import make_image
from tests.integration.gateway.workspace_helpers import study, user
from tests.jobs_helpers import finished_job

LIMIT = 400_000  # render.max_pixels here: the 1.5 MP slide is over it


def _slide_tiff(tmp: Path, *, pyramid: bool = True) -> tuple[bytes, np.ndarray]:
    """A 1500 x 1000 tiled TIFF (lossless), with its reduced levels or without."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:1000, 0:1500]
    noise = rng.integers(-10, 11, (1000, 1500, 3))
    base = np.stack([xx * 255 // 1499, yy * 255 // 999, (xx + yy) % 256], axis=-1)
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    path = tmp / ("slide.tif" if pyramid else "flat.tif")
    image = pyvips.Image.new_from_array(pixels, interpretation="srgb")
    image.tiffsave(str(path), tile=True, pyramid=pyramid, compression="deflate")
    return path.read_bytes(), pixels


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One server for the module (the tests only read, but for a study grant)."""
    tmp_path = tmp_path_factory.mktemp("deepzoom")
    settings = make_settings(
        tmp_path, render={"max_pixels": LIMIT}, security={"signing_key": "s3cret"}
    )
    container = build_container(settings)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        olga, nobody, vic = (user(container, n) for n in ("olga", "nobody", "vic"))
        body, pixels = _slide_tiff(tmp_path)
        r = client.post("/v1/images", content=body, headers=olga)
        assert r.status_code == 201, r.text
        yield {
            "client": client,
            "container": container,
            "olga": olga,
            "nobody": nobody,
            "vic": vic,
            "id": r.json()["id"],
            "pixels": pixels,
            "tmp": tmp_path,
        }
    container.close()


def _png(body: bytes) -> np.ndarray:
    return np.asarray(pyvips.Image.new_from_buffer(body, "").numpy())


def test_a_slide_over_the_pixel_limit_is_taken_and_described(world: dict[str, Any]) -> None:
    client, olga, image_id = world["client"], world["olga"], world["id"]
    assert client.get(f"/v1/images/{image_id}", headers=olga).json()["width"] == 1500
    r = client.get(f"/v1/images/{image_id}/dzi.dzi", headers=olga)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    size = root.find("{http://schemas.microsoft.com/deepzoom/2008}Size")
    assert size is not None and (size.get("Width"), size.get("Height")) == ("1500", "1000")
    assert (root.get("Format"), root.get("TileSize"), root.get("Overlap")) == ("jpeg", "510", "1")
    as_json = client.get(f"/v1/images/{image_id}/dzi.json", headers=olga).json()
    assert as_json["Image"]["Size"] == {"Width": "1500", "Height": "1000"}


def test_flat_images_over_the_limit_are_still_refused(world: dict[str, Any]) -> None:
    client, olga = world["client"], world["olga"]
    flat, _ = _slide_tiff(world["tmp"], pyramid=False)
    r = client.post("/v1/images", content=flat, headers=olga)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    png = make_image(800, 600, fmt=".png")
    assert client.post("/v1/images", content=png, headers=olga).status_code == 413


def test_a_full_resolution_tile_is_the_original_region(world: dict[str, Any]) -> None:
    client, olga, image_id, pixels = world["client"], world["olga"], world["id"], world["pixels"]
    r = client.get(f"/v1/images/{image_id}/dzi_files/11/1_1.png", headers=olga)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert np.array_equal(_png(r.content), pixels[509:1000, 509:1021])
    assert r.headers["cache-control"].startswith("private")
    assert r.headers["x-cache"] == "MISS"
    again = client.get(f"/v1/images/{image_id}/dzi_files/11/1_1.png", headers=olga)
    assert again.headers["x-cache"] == "HIT" and again.content == r.content
    etag = r.headers["etag"]
    unchanged = client.get(
        f"/v1/images/{image_id}/dzi_files/11/1_1.png",
        headers={**olga, "If-None-Match": etag},
    )
    assert unchanged.status_code == 304


def test_deep_tiles_open_although_the_full_resolution_is_over_the_limit(
    world: dict[str, Any],
) -> None:
    client, olga, image_id, pixels = world["client"], world["olga"], world["id"], world["pixels"]
    whole = client.get(f"/v1/images/{image_id}/dzi_files/7/0_0.jpeg", headers=olga)
    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"] == "image/jpeg"
    assert _png(whole.content).shape == (63, 94, 3)  # 1500 x 1000 / 16
    dot = _png(client.get(f"/v1/images/{image_id}/dzi_files/0/0_0.png", headers=olga).content)
    assert np.abs(dot[0, 0].astype(float) - pixels.reshape(-1, 3).mean(axis=0)).max() < 8


def test_tiles_outside_the_pyramid_and_unknown_formats_are_problems(
    world: dict[str, Any],
) -> None:
    client, olga, image_id = world["client"], world["olga"], world["id"]
    assert (
        client.get(f"/v1/images/{image_id}/dzi_files/11/3_0.jpeg", headers=olga).status_code == 404
    )
    assert (
        client.get(f"/v1/images/{image_id}/dzi_files/12/0_0.jpeg", headers=olga).status_code == 404
    )
    bad = client.get(f"/v1/images/{image_id}/dzi_files/11/0_0.bmp", headers=olga)
    assert bad.status_code == 422
    assert "jpeg" in bad.json()["detail"]


def test_only_people_who_may_read_the_image_see_its_tiles(world: dict[str, Any]) -> None:
    client, container, image_id = world["client"], world["container"], world["id"]
    olga, nobody, vic = world["olga"], world["nobody"], world["vic"]
    tile = f"/v1/images/{image_id}/dzi_files/9/0_0.jpeg"
    for path in (f"/v1/images/{image_id}/dzi.dzi", tile):
        assert client.get(path, headers=nobody).status_code == 404
        assert client.get(path).status_code == 401
    sid = study(client, olga, {"vic": "viewer"}, container=container)
    r = client.post(f"/v1/studies/{sid}/images", json={"image_id": image_id}, headers=olga)
    assert r.status_code in (200, 201), r.text
    assert client.get(tile, headers=vic).status_code == 200
    assert client.get(tile, headers=nobody).status_code == 404


def test_one_signature_opens_the_whole_pyramid(world: dict[str, Any]) -> None:
    client, image_id = world["client"], world["id"]
    signed = sign_url("s3cret", f"/v1/images/{image_id}/dzi", expires=int(time.time()) + 600)
    query = signed.split("?", 1)[1]
    descriptor = client.get(f"/v1/images/{image_id}/dzi.dzi?{query}")
    assert descriptor.status_code == 200
    tile = client.get(f"/v1/images/{image_id}/dzi_files/10/0_0.jpeg?{query}")
    assert tile.status_code == 200
    assert tile.headers["cache-control"].startswith("public")
    forged = query.replace("sig=", "sig=x")
    assert client.get(f"/v1/images/{image_id}/dzi_files/10/0_0.jpeg?{forged}").status_code == 403
    other = sign_url("s3cret", "/v1/images/someone-else/dzi").split("?", 1)[1]
    assert client.get(f"/v1/images/{image_id}/dzi.dzi?{other}").status_code == 403


def test_a_slide_renders_only_at_a_size_and_jobs_refuse_it(world: dict[str, Any]) -> None:
    client, olga, image_id = world["client"], world["olga"], world["id"]
    thumb = client.get(f"/v1/images/{image_id}/render?w=300&format=png", headers=olga)
    assert thumb.status_code == 200, thumb.text
    assert _png(thumb.content).shape == (200, 300, 3)
    whole = client.get(f"/v1/images/{image_id}/render?format=png", headers=olga)
    assert whole.status_code == 413
    assert "dzi" in whole.json()["detail"]
    job = client.post(
        "/v1/jobs", json={"inputs": [image_id], "pipeline": [{"op": "grayscale"}]}, headers=olga
    )
    assert job.status_code in (200, 201, 202), job.text
    state = finished_job(client, job.json()["id"], olga, timeout=60)
    assert state["state"] == "failed"
    assert "whole slide" in str(state)


def test_a_16_bit_image_gives_8_bit_tiles_of_its_pixels(world: dict[str, Any]) -> None:
    """A viewer shows 8 bits a channel: a 16-bit RGBA PNG's tiles are 8-bit PNGs (half the
    bytes of a 16-bit tile) whose pixels are the original's top 8 bits."""
    client, olga = world["client"], world["olga"]
    rng = np.random.default_rng(3)
    deep = rng.integers(0, 65536, (300, 400, 4), dtype=np.uint16)
    deep[..., 3] = 65535 - deep[..., 3] // 4  # mostly opaque, not all
    body = pyvips.Image.new_from_array(deep, interpretation="rgb16").pngsave_buffer()
    r = client.post("/v1/images", content=body, headers=olga)
    assert r.status_code == 201, r.text
    image_id = r.json()["id"]
    root = ET.fromstring(client.get(f"/v1/images/{image_id}/dzi.dzi", headers=olga).content)
    assert root.get("Format") == "png"  # it has an alpha channel
    tile = client.get(f"/v1/images/{image_id}/dzi_files/9/0_0.png", headers=olga)
    assert tile.status_code == 200, tile.text
    decoded = pyvips.Image.new_from_buffer(tile.content, "")
    assert (decoded.format, decoded.bands) == ("uchar", 4)
    assert np.abs(decoded.numpy().astype(int) - (deep >> 8)).max() <= 1
