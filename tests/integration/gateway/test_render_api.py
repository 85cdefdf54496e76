"""On-the-fly render over HTTP: sizes, formats, negotiation, caching, ETags."""

from __future__ import annotations

import pytest
import pyvips
from fastapi.testclient import TestClient

from pixelmill.imaging import ops
from pixelmill.imaging.pipeline import run
from pixelmill.imaging.render import parse_render, to_steps
from tests.helpers import make_image


@pytest.fixture(autouse=True)
def _logged_in(client: TestClient, auth: dict[str, str]) -> None:
    """These tests render as a logged-in user (images are private by default)."""
    client.headers.update(auth)


@pytest.fixture
def image_id(client: TestClient, auth: dict[str, str]) -> str:
    resp = client.post("/v1/images", content=make_image(1200, 800), headers=auth)
    return str(resp.json()["id"])


def _decode(content: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(content, "")


@pytest.mark.parametrize(
    ("fmt", "mime", "loader"),
    [
        ("jpeg", "image/jpeg", "jpegload_buffer"),
        ("png", "image/png", "pngload_buffer"),
        ("webp", "image/webp", "webpload_buffer"),
        ("avif", "image/avif", "heifload_buffer"),
        ("tiff", "image/tiff", "tiffload_buffer"),
    ],
)
def test_every_output_format(
    client: TestClient, image_id: str, fmt: str, mime: str, loader: str
) -> None:
    resp = client.get(f"/v1/images/{image_id}/render", params={"w": 120, "format": fmt})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == mime
    image = _decode(resp.content)
    assert image.get("vips-loader") == loader
    assert (image.width, image.height) == (120, 80)


def test_quality_changes_size(client: TestClient, image_id: str) -> None:
    small = client.get(f"/v1/images/{image_id}/render", params={"w": 400, "q": 20})
    large = client.get(f"/v1/images/{image_id}/render", params={"w": 400, "q": 95})
    assert len(small.content) < len(large.content) * 0.7


def test_format_auto_negotiates_from_accept_and_varies(client: TestClient, image_id: str) -> None:
    url = f"/v1/images/{image_id}/render"
    webp = client.get(
        url, params={"w": 100, "format": "auto"}, headers={"Accept": "image/webp,*/*"}
    )
    assert webp.headers["content-type"] == "image/webp"
    assert webp.headers["vary"] == "Accept"
    plain = client.get(url, params={"w": 100, "format": "auto"}, headers={"Accept": "image/*"})
    assert plain.headers["content-type"] == "image/jpeg"
    refused = client.get(
        url, params={"w": 100, "format": "auto"}, headers={"Accept": "image/webp;q=0"}
    )
    assert refused.headers["content-type"] == "image/jpeg"
    # the two negotiated variants have different validators
    assert webp.headers["etag"] != plain.headers["etag"]


def test_metadata_is_stripped_by_default(client: TestClient, auth: dict[str, str]) -> None:
    image = pyvips.Image.new_from_buffer(make_image(300, 200), "").copy()
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "Dr. Secret")
    data = bytes(image.write_to_buffer(".jpg"))
    image_id = client.post("/v1/images", content=data, headers=auth).json()["id"]
    stripped = client.get(f"/v1/images/{image_id}/render", params={"w": 100})
    assert b"Dr. Secret" not in stripped.content
    kept = client.get(f"/v1/images/{image_id}/render", params={"w": 100, "strip": "false"})
    assert b"Dr. Secret" in kept.content


def test_repeat_renders_hit_the_cache_and_revalidate_with_304(
    client: TestClient, image_id: str
) -> None:
    url = f"/v1/images/{image_id}/render?w=200&h=200&blur=1.5"
    first = client.get(url)
    assert first.headers["x-cache"] == "MISS"
    second = client.get(url)
    assert second.headers["x-cache"] == "HIT"
    assert second.content == first.content
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert "max-age" in first.headers["cache-control"]
    revalidated = client.get(url, headers={"If-None-Match": etag})
    assert revalidated.status_code == 304
    assert revalidated.content == b""
    other = client.get(f"/v1/images/{image_id}/render?w=201&h=200&blur=1.5")
    assert other.headers["etag"] != etag


def test_render_query_equals_the_json_pipeline(
    client: TestClient, auth: dict[str, str], image_id: str
) -> None:
    query = {"w": "300", "h": "300", "fit": "cover", "rotate": "90", "grayscale": "1"}
    over_http = _decode(
        client.get(f"/v1/images/{image_id}/render", params={**query, "format": "png"}).content
    )
    original = client.get(f"/v1/images/{image_id}/original", headers=auth).content
    steps = to_steps(parse_render(query, max_side=8192))
    as_pipeline = run(original, ops.parse_pipeline([s.to_json() for s in steps]))
    assert over_http.numpy().tolist() == as_pipeline.numpy().tolist()


def test_image_watermark_from_another_stored_image(
    client: TestClient, auth: dict[str, str], image_id: str
) -> None:
    import numpy as np

    red = pyvips.Image.new_from_array(np.full((50, 50, 3), (255, 0, 0), np.uint8)).copy(
        interpretation="srgb"
    )
    mark_id = client.post(
        "/v1/images", content=bytes(red.write_to_buffer(".png")), headers=auth
    ).json()["id"]
    resp = client.get(
        f"/v1/images/{image_id}/render",
        params={"w": 400, "wm": mark_id, "wm_pos": "northwest", "wm_opacity": 1, "format": "png"},
    )
    assert resp.status_code == 200
    pixels = _decode(resp.content).numpy()
    r, g, b = pixels[20, 20]
    assert r > 200 and g < 60 and b < 60
    missing = client.get(f"/v1/images/{image_id}/render", params={"w": 400, "wm": "nope"})
    assert missing.status_code == 404
