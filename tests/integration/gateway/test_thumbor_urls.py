"""thumbor-compatible URLs: a thumbor user points libthumbor at pixelmill and gets the
same images; signatures are checked, unsafe URLs are off unless configured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
from fastapi.testclient import TestClient
from libthumbor import CryptoURL

from pixelmill.settings import Settings
from tests.conftest import make_settings
from tests.helpers import make_image

KEY = "thumbor-secret-key"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, security={"thumbor_key": KEY, "thumbor_allow_unsafe": True})


@pytest.fixture
def image_id(client: TestClient, auth: dict[str, str]) -> str:
    resp = client.post("/v1/images", content=make_image(600, 400), headers=auth)
    assert resp.status_code == 201
    return str(resp.json()["id"])


def decoded(body: bytes) -> pyvips.Image:
    return pyvips.Image.new_from_buffer(body, "")


def test_a_libthumbor_signed_url_renders_without_a_key(client: TestClient, image_id: str) -> None:
    # given a URL signed by thumbor's own client library
    url = CryptoURL(key=KEY).generate(
        width=300,
        height=200,
        fit_in=True,
        smart=True,
        image_url=image_id,
        filters=["quality(80)", "format(webp)", "grayscale()"],
    )
    assert url.startswith("/") and "/fit-in/300x200/smart/filters:" in url
    # when anyone fetches it
    resp = client.get(url)
    # then it is the render those options ask for, cacheable by anyone
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/webp"
    assert resp.headers["cache-control"].startswith("public")
    image = decoded(resp.content)
    assert (image.width, image.height) == (300, 200)
    pixels = np.asarray(image.numpy()).astype(int)
    assert np.abs(pixels[..., 0] - pixels[..., 2]).max() <= 2  # grey (WebP stores RGB)


def test_a_tampered_or_foreign_signature_is_403(client: TestClient, image_id: str) -> None:
    url = CryptoURL(key=KEY).generate(width=100, height=100, image_url=image_id)
    assert client.get(url.replace("100x100", "900x900")).status_code == 403
    foreign = CryptoURL(key="another key").generate(width=100, height=100, image_url=image_id)
    assert client.get(foreign).status_code == 403


def test_crop_flip_and_alignment_follow_thumbor(client: TestClient, image_id: str) -> None:
    crypto = CryptoURL(key=KEY)
    source = np.asarray(decoded(make_image(600, 400)).numpy()).astype(int)
    # a manual crop (left, top, right, bottom) at its own size, mirrored left-right
    url = crypto.generate(
        crop=((100, 50), (300, 250)),
        width=-200,
        height=200,
        image_url=image_id,
        filters=["format(png)"],
    )
    out = np.asarray(decoded(client.get(url).content).numpy()).astype(int)
    assert out.shape[:2] == (200, 200)
    assert np.abs(out[:, ::-1] - source[50:250, 100:300]).mean() < 6  # JPEG source noise
    # top/left alignment keeps the top-left corner of a cover crop
    url = crypto.generate(width=200, height=400, halign="left", valign="top", image_url=image_id)
    assert decoded(client.get(url).content).width == 200


def test_thumbor_enlarges_unless_fit_in(client: TestClient, image_id: str) -> None:
    crypto = CryptoURL(key=KEY)
    big = decoded(client.get(crypto.generate(width=1200, height=800, image_url=image_id)).content)
    assert (big.width, big.height) == (1200, 800)
    fit = crypto.generate(width=1200, height=800, fit_in=True, image_url=image_id)
    assert decoded(client.get(fit).content).width == 600
    up = crypto.generate(
        width=1200, height=800, fit_in=True, filters=["upscale()"], image_url=image_id
    )
    assert decoded(client.get(up).content).width == 1200


def test_fill_pads_a_fit_in_result_to_the_box(client: TestClient, image_id: str) -> None:
    url = CryptoURL(key=KEY).generate(
        width=300,
        height=300,
        fit_in=True,
        filters=["fill(ff0000)", "format(png)"],
        image_url=image_id,
    )
    out = np.asarray(decoded(client.get(url).content).numpy())
    assert out.shape[:2] == (300, 300)
    assert tuple(out[5, 150]) == (255, 0, 0)


def test_an_unsupported_filter_is_422_not_silently_ignored(
    client: TestClient, image_id: str
) -> None:
    url = CryptoURL(key=KEY).generate(
        width=100, height=100, filters=["round_corner(20,255,255,255)"], image_url=image_id
    )
    resp = client.get(url)
    assert resp.status_code == 422
    assert "round_corner" in resp.json()["detail"]


def test_unsafe_urls_need_a_credential(
    client: TestClient, image_id: str, auth: dict[str, str]
) -> None:
    url = f"/unsafe/100x100/filters:quality(50)/{image_id}"
    assert client.get(url).status_code == 401
    resp = client.get(url, headers=auth)
    assert resp.status_code == 200
    assert resp.headers["cache-control"].startswith("private")


def test_unsafe_urls_are_off_by_default(
    tmp_path: Path, auth: dict[str, str], client: TestClient, image_id: str
) -> None:
    from pixelmill.runtime.container import build_container
    from pixelmill.services.gateway.app import create_app

    container = build_container(make_settings(tmp_path / "other"))
    with TestClient(create_app(container), raise_server_exceptions=False) as other:
        assert other.get(f"/unsafe/100x100/{image_id}").status_code == 403
        signed = CryptoURL(key=KEY).generate(width=100, height=100, image_url=image_id)
        assert other.get(signed).status_code == 403  # no thumbor_key: nothing is signed
    container.close()


def test_other_paths_are_left_to_other_routes(client: TestClient) -> None:
    # (other GETs outside the API fall back to the web app, which answers its own page)
    assert client.get("/v1/nothing/here").status_code == 404
    assert client.get("/v1/images/none/render/x").status_code == 404
    # a POST elsewhere is not taken for a thumbor GET (405): the route does not match
    assert client.post("/nothing/here").status_code == 404


def test_a_malformed_signature_is_403_not_the_web_app(client: TestClient, image_id: str) -> None:
    url = CryptoURL(key=KEY).generate(width=300, height=200, image_url=image_id)
    signature = url.split("/")[1]
    assert len(signature) == 28 and signature.endswith("=")
    malformed = [
        url.replace(signature, signature.rstrip("=")),  # without its padding
        url.replace(signature, "A" * 28 + "="),  # 29 characters
        url.replace(signature, "2eF5R3+0c3hiL/XoVYOSh/92vR8="),  # standard base64, with '/'
        f"/{'A' * 27}/fit-in/300x200/filters:quality(80)/{image_id}",
    ]
    for path in malformed:
        answer = client.get(path)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        problem = answer.json()
        assert problem["type"].endswith("/bad-signature")
        assert "malformed" in problem["detail"]
    assert client.get(url).status_code == 200  # the well-formed one still renders


def test_web_app_paths_are_not_taken_for_thumbor_urls(client: TestClient) -> None:
    # deep links of the web app (and unknown API paths) keep their own answers
    for path in ("/studies/0123456789abcdef0123456789", "/viewer/0123456789abcdef0123456789"):
        assert client.get(path).status_code != 403, path
    assert client.get(f"/v1/{'A' * 27}/300x200/some-id").status_code == 404
    assert client.get(f"/{'A' * 27}/just-an-id").status_code != 403
