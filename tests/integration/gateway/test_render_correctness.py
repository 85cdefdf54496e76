"""Renders over HTTP that used to come out wrong: wide-gamut colour, transparency into
JPEG, 16-bit output, 100 MP camera files, and small images blown up."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips
from fastapi.testclient import TestClient
from skimage.color import deltaE_ciede2000, rgb2lab

from tests.helpers import make_image


@pytest.fixture(autouse=True)
def _logged_in(client: TestClient, auth: dict[str, str]) -> None:
    """These tests render as a logged-in user (images are private by default)."""
    client.headers.update(auth)


def _upload(client: TestClient, auth: dict[str, str], data: bytes) -> str:
    resp = client.post("/v1/images", content=data, headers=auth)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _render(client: TestClient, image_id: str, **params: object) -> pyvips.Image:
    resp = client.get(f"/v1/images/{image_id}/render", params=params)
    assert resp.status_code == 200, resp.text
    return pyvips.Image.new_from_buffer(resp.content, "")


def _mean_rgb(image: pyvips.Image) -> np.ndarray:
    pixels = np.asarray(image.numpy(), dtype=np.float64)[..., :3]
    return np.asarray(pixels.reshape(-1, 3).mean(axis=0) / 255.0)


def test_display_p3_photo_renders_in_its_real_colours(
    client: TestClient, auth: dict[str, str]
) -> None:
    # given a Display-P3 JPEG of a saturated red (its profile is the only clue)
    patch = np.empty((600, 800, 3), np.uint8)
    patch[...] = (220, 0, 30)
    image = pyvips.Image.new_from_array(patch).copy(interpretation="srgb")
    p3 = image.icc_export(output_profile="p3").get("icc-profile-data")
    image.set_type(pyvips.GValue.blob_type, "icc-profile-data", p3)
    data = bytes(image.write_to_buffer(".jpg", Q=95, keep="icc"))
    source = pyvips.Image.new_from_buffer(data, "")
    expected = _mean_rgb(source.icc_transform("srgb", embedded=True))
    image_id = _upload(client, auth, data)
    # when a thumbnail is served (metadata stripped), it shows the same red
    out = _render(client, image_id, w=200, q=95)
    assert "icc-profile-data" not in out.get_fields()
    got = _mean_rgb(out)
    assert deltaE_ciede2000(rgb2lab(got[None, None]), rgb2lab(expected[None, None]))[0, 0] <= 2
    # icc=keep serves the P3 numbers with the P3 profile embedded
    kept = _render(client, image_id, w=200, q=95, icc="keep")
    assert bytes(kept.get("icc-profile-data")) == bytes(p3)


def test_transparent_png_as_jpeg_sits_on_the_asked_background(
    client: TestClient, auth: dict[str, str]
) -> None:
    pixels = np.zeros((100, 100, 4), np.uint8)  # fully transparent
    clear = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    image_id = _upload(client, auth, bytes(clear.write_to_buffer(".png")))
    red = _mean_rgb(_render(client, image_id, format="jpeg", bg="ff0000"))
    assert red[0] > 0.95 and red[1] < 0.05 and red[2] < 0.05
    white = _mean_rgb(_render(client, image_id, format="jpeg"))
    assert white.min() > 0.97


def test_16_bit_tiff_renders_to_16_bit_png_unless_8_are_asked(
    client: TestClient, auth: dict[str, str]
) -> None:
    pixels = np.empty((300, 400, 3), np.uint16)
    pixels[...] = (50000, 20001, 10003)
    deep = pyvips.Image.new_from_array(pixels).copy(interpretation="rgb16")
    image_id = _upload(client, auth, bytes(deep.write_to_buffer(".tif")))
    for params in ({}, {"w": 100}, {"w": 100, "h": 100, "fit": "cover"}):
        out = _render(client, image_id, **params)  # a TIFF renders as PNG by default
        assert out.get("vips-loader") == "pngload_buffer"
        assert str(out.format) == "ushort"
        assert out(10, 10) == [50000, 20001, 10003]
        eight = _render(client, image_id, depth=8, **params)
        assert str(eight.format) == "uchar"


def test_small_image_is_not_enlarged_unless_asked(client: TestClient, auth: dict[str, str]) -> None:
    image_id = _upload(client, auth, make_image(200, 100))
    for fit in ("cover", "inside", "fill", "outside"):
        out = _render(client, image_id, w=400, h=400, fit=fit)
        assert (out.width, out.height) == (200, 100)
    assert _render(client, image_id, w=400).width == 200
    assert _render(client, image_id, w=400, enlarge=1).width == 400
    boxed = _render(client, image_id, w=400, h=400, fit="contain")
    assert (boxed.width, boxed.height) == (400, 400)


def test_a_100_mp_camera_file_uploads_and_renders(client: TestClient, auth: dict[str, str]) -> None:
    # the size of a 100 MP medium-format camera frame: 11648 x 8736 = 101.8 MP
    frame = pyvips.Image.black(11648, 8736, bands=3).copy(interpretation="srgb") + 90
    image_id = _upload(client, auth, bytes(frame.cast("uchar").write_to_buffer(".jpg")))
    thumb = _render(client, image_id, w=300)
    assert (thumb.width, thumb.height) == (300, 225)


def test_trim_of_a_one_pixel_image_answers_the_pixel(
    client: TestClient, auth: dict[str, str]
) -> None:
    # it was 422 corrupt-image: libvips' find_trim refuses images under 3x3 pixels
    pixel = pyvips.Image.black(1, 1, bands=3).new_from_image([200, 30, 60]).cast("uchar")
    image_id = _upload(
        client, auth, bytes(pixel.copy(interpretation="srgb").write_to_buffer(".png"))
    )
    out = _render(client, image_id, trim=10)
    assert (out.width, out.height) == (1, 1)
    assert list(out.getpoint(0, 0))[:3] == [200, 30, 60]
    grown = _render(client, image_id, trim=10, w=8, enlarge=1, format="png")
    assert (grown.width, grown.height) == (8, 8)
