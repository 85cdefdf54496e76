"""Bad input gets a clear problem+json 4xx; nothing half-written stays; serving goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container, build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.helpers import make_image, make_key


@pytest.fixture(autouse=True)
def _logged_in(client: TestClient, auth: dict[str, str]) -> None:
    """These tests render as a logged-in user (images are private by default)."""
    client.headers.update(auth)


JPEG = make_image(400, 300)


def _animated_gif(frames: int = 3) -> bytes:
    """Frames of a grey square moving right, each unlike the others."""
    strip = pyvips.Image.black(60, 40 * frames, bands=3).copy(interpretation="srgb")
    for i in range(frames):
        strip = strip.draw_rect([200, 200, 200], 15 * i, 40 * i, 15, 40, fill=True)
    strip.set_type(pyvips.GValue.gint_type, "page-height", 40)
    return bytes(strip.cast("uchar").write_to_buffer(".gif"))


GIF = _animated_gif()


def _assert_problem(resp, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return dict(body)


def _assert_nothing_stored(container: Container) -> None:
    assert container.images.count() == 0
    assert list(container.storage.list("originals/")) == []
    tmp = container.settings.data_dir / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        (b"", 400, "empty-input"),
        (JPEG[: len(JPEG) // 2], 422, "corrupt-image"),
        (b"\xff\xd8\xff" + b"\x00" * 500, 422, "corrupt-image"),
        # libvips decodes a cut last frame without an error: it was stored with pages=3
        (GIF[:-3], 422, "corrupt-image"),
        (b"<html>definitely not an image</html>", 415, "unsupported-format"),
        (b"%PDF-1.4\n" + b"0" * 100, 415, "unsupported-format"),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing_behind(
    client: TestClient,
    auth: dict[str, str],
    container: Container,
    body: bytes,
    status: int,
    slug: str,
) -> None:
    resp = client.post("/v1/images", content=body, headers={**auth, "Content-Type": "image/jpeg"})
    problem = _assert_problem(resp, status)
    assert problem["type"].endswith(slug)
    _assert_nothing_stored(container)
    # and the service keeps serving
    assert client.post("/v1/images", content=JPEG, headers=auth).status_code == 201


def test_decompression_bomb_is_413_from_the_header(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    # 280 MP of one colour, above the default limit of 16383 x 16383 (268 MP)
    bomb = pyvips.Image.black(20000, 14000).write_to_buffer(".png", compression=9)
    assert len(bomb) < 2_000_000
    problem = _assert_problem(client.post("/v1/images", content=bomb, headers=auth), 413)
    assert problem["max_pixels"] == 16383 * 16383
    _assert_nothing_stored(container)


def test_configured_pixel_and_byte_limits(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, render={"max_pixels": 10_000}, server={"max_upload_bytes": 50_000}
    )
    container = build_container(settings)
    _, key = make_key(container, "t", role="write")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(container)) as client:
        _assert_problem(client.post("/v1/images", content=make_image(200, 100), headers=auth), 413)
        big = make_image(90, 90, fmt=".png") + b"\x00" * 60_000
        _assert_problem(client.post("/v1/images", content=big, headers=auth), 413)
        multipart = client.post(
            "/v1/images", files={"file": ("big.png", big, "image/png")}, headers=auth
        )
        _assert_problem(multipart, 413)
        _assert_nothing_stored(container)
        ok = client.post("/v1/images", content=make_image(90, 90), headers=auth)
        assert ok.status_code == 201
    container.close()


def test_multipart_without_a_file_part(client: TestClient, auth: dict[str, str]) -> None:
    resp = client.post("/v1/images", files={"note": (None, "no file")}, headers=auth)
    _assert_problem(resp, 400)


@pytest.mark.parametrize(
    "query",
    [
        "w=0",
        "w=1000000",
        "q=101",
        "blur=NaN",
        "format=bmp",
        "fit=squash",
        "w=ten",
        "unknown=1",
        "crop=0,0,10",
    ],
)
def test_bad_render_parameters_are_422(
    client: TestClient, auth: dict[str, str], query: str
) -> None:
    image_id = client.post("/v1/images", content=JPEG, headers=auth).json()["id"]
    problem = _assert_problem(client.get(f"/v1/images/{image_id}/render?{query}"), 422)
    assert problem["errors"] or problem["detail"]
    assert client.get(f"/v1/images/{image_id}/render?w=50").status_code == 200


def test_unknown_ids_are_404_everywhere(client: TestClient, auth: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/v1/images/doesnotexist"),
        ("GET", "/v1/images/doesnotexist/meta"),
        ("GET", "/v1/images/doesnotexist/original"),
        ("GET", "/v1/images/doesnotexist/render?w=10"),
        ("DELETE", "/v1/images/doesnotexist"),
    ]:
        _assert_problem(client.request(method, path, headers=auth), 404)


def test_crop_outside_the_image_is_422(client: TestClient, auth: dict[str, str]) -> None:
    image_id = client.post("/v1/images", content=JPEG, headers=auth).json()["id"]
    _assert_problem(client.get(f"/v1/images/{image_id}/render?crop=5000,0,10,10"), 422)


@pytest.mark.parametrize(
    ("size", "fmt", "limit"),
    [((16384, 4), "webp", 16383), ((4, 16385), "avif", 16384), ((65501, 2), "jpeg", 65500)],
)
def test_an_output_larger_than_its_format_holds_is_a_parameter_error(
    client: TestClient, auth: dict[str, str], size: tuple[int, int], fmt: str, limit: int
) -> None:
    # a full-size render is not capped by render.max_output_side: a long strip in a
    # format that cannot hold it was answered as a corrupt source (corrupt-image)
    strip = pyvips.Image.black(*size, bands=3).copy(interpretation="srgb") + 60
    upload = client.post("/v1/images", content=strip.cast("uchar").write_to_buffer(".png"))
    assert upload.status_code == 201, upload.text
    image_id = upload.json()["id"]
    problem = _assert_problem(client.get(f"/v1/images/{image_id}/render?format={fmt}"), 422)
    assert problem["type"].endswith("/invalid-parameter")
    assert (problem["format"], problem["max_side"]) == (fmt, limit)
    assert str(limit) in problem["detail"]
    assert client.get(f"/v1/images/{image_id}/render?format=png").status_code == 200
