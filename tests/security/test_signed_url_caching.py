"""A signed URL with ``expires`` must not be kept by shared caches (CDNs, proxies,
browsers) past its expiry: the answer's ``max-age`` is at most the seconds it has left
and it is not ``immutable``. Signed URLs without ``expires`` keep the long max-age."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from pixelmill.services.gateway import signing
from pixelmill.services.gateway.signing import sign_url
from tests.conftest import make_settings
from tests.security.signed_world import signing_gateway

KEY = "s3cret-0123456789"
YEAR = 31536000


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    settings = make_settings(
        tmp_path_factory.mktemp("signed-cache"),
        security={"signing_key": KEY},
        cache={"http_max_age": YEAR},
    )
    with signing_gateway(settings) as (client, image):
        yield client, image


def _max_age(control: str) -> int:
    found = re.search(r"max-age=(\d+)", control)
    assert found is not None, control
    return int(found.group(1))


def _expiring(path: str, sign_path: str | None = None, left: int = 300) -> str:
    signed = sign_url(KEY, sign_path or path, expires=int(time.time()) + left)
    return signed if sign_path is None else f"{path}?{signed.split('?', 1)[1]}"


def _check_short(client: TestClient, url: str, left: int = 300) -> None:
    first = client.get(url)
    assert first.status_code == 200, first.text
    control = first.headers["cache-control"]
    assert "immutable" not in control and 0 < _max_age(control) <= left, control
    again = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert "immutable" not in again.headers["cache-control"]
    assert _max_age(again.headers["cache-control"]) <= left


def test_an_expiring_signed_render_is_cached_no_longer_than_it_works(
    gateway: tuple[TestClient, str],
) -> None:
    client, image = gateway
    _check_short(client, _expiring(f"/v1/images/{image}/render?w=40"))


def test_a_signed_render_without_expiry_keeps_the_long_max_age(
    gateway: tuple[TestClient, str],
) -> None:
    client, image = gateway
    r = client.get(sign_url(KEY, f"/v1/images/{image}/render?w=41"))
    assert r.status_code == 200
    assert r.headers["cache-control"] == f"public, max-age={YEAR}, immutable"


@pytest.mark.parametrize("file", ["dzi.dzi", "dzi.json", "dzi_files/0/0_0.jpeg"])
def test_expiring_signed_deepzoom_answers_are_cached_no_longer_than_they_work(
    gateway: tuple[TestClient, str], file: str
) -> None:
    client, image = gateway
    url = _expiring(f"/v1/images/{image}/{file}", f"/v1/images/{image}/dzi", left=120)
    _check_short(client, url, left=120)


def test_the_max_age_is_the_seconds_left_never_negative() -> None:
    cache_control = signing.cache_control
    assert cache_control("public", YEAR, {"expires": "1300"}, now=1000) == "public, max-age=300"
    assert cache_control("public", 60, {"expires": "1300"}, now=1000) == "public, max-age=60"
    assert cache_control("private", 60, {"expires": "900"}, now=1000) == "private, max-age=0"
    no_expiry = "public, max-age=60, immutable"
    assert cache_control("public", 60, {}, now=1000) == no_expiry
