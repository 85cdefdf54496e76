"""GET /v1/images/{id}/render answered by the gateway's fast path
(services/gateway/fast_render.py) is the same API as through FastAPI's route: the same
statuses, headers, bodies and problems, the same metrics label. Each request is sent
twice, once with the fast path on and once with it stepping aside."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from pixelmill.observability import metrics
from pixelmill.services.gateway import fast_render
from pixelmill.services.gateway.fast_render import FastRender
from pixelmill.services.gateway.routes import images
from tests.helpers import make_image

#: headers that differ between any two answers (the second render is a cache hit)
_OWN = {"date", "x-request-id", "x-cache", "ratelimit-remaining", "ratelimit-reset"}


@pytest.fixture
def image_id(client: TestClient, auth: dict[str, str]) -> str:
    return str(client.post("/v1/images", content=make_image(320, 200), headers=auth).json()["id"])


@pytest.fixture
def fast_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The image ids the fast path rendered (it calls the route's own function)."""
    calls: list[str] = []

    async def render(request: Any, image_id: str) -> Any:
        calls.append(image_id)
        return await images.render(request, image_id)

    monkeypatch.setattr(fast_render, "images", SimpleNamespace(render=render))
    return calls


@contextmanager
def _routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The fast path stepping aside: every request reaches FastAPI's router."""

    async def aside(self: FastRender, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    with monkeypatch.context() as patched:
        patched.setattr(FastRender, "__call__", aside)
        yield


def _both(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, url: str, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    headers = {**headers, "X-Request-ID": "same-request"}  # problem bodies repeat it
    fast = client.get(url, headers=headers)
    with _routed(monkeypatch):
        routed = client.get(url, headers=headers)
    return fast, routed


def _same(fast: httpx.Response, routed: httpx.Response) -> None:
    assert fast.status_code == routed.status_code
    assert fast.content == routed.content
    own = {k: v for k, v in fast.headers.items() if k not in _OWN}
    assert own == {k: v for k, v in routed.headers.items() if k not in _OWN}


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("w=120&h=90&format=jpeg&q=82", 200),
        ("w=120&format=png", 200),
        ("w=120&format=webp&bogus=1", 422),  # unknown parameter
        ("w=99999", 422),  # above the largest output side
        ("w=120&sig=not-a-signature", 200),  # no signing key configured: sig is ignored
    ],
)
def test_a_render_is_answered_the_same_both_ways(
    client: TestClient,
    auth: dict[str, str],
    image_id: str,
    fast_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    status: int,
) -> None:
    fast, routed = _both(client, monkeypatch, f"/v1/images/{image_id}/render?{query}", auth)
    assert fast_calls == [image_id]  # the first went the fast way, the second did not
    assert fast.status_code == status
    _same(fast, routed)
    if status == 422:
        assert fast.headers["content-type"] == "application/problem+json"
        assert fast.json()["instance"] == f"/v1/images/{image_id}/render"


def test_refusals_and_revalidation_are_the_same_both_ways(
    client: TestClient, auth: dict[str, str], image_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"/v1/images/{image_id}/render?w=64"
    etag = client.get(url, headers=auth).headers["etag"]
    cases = [
        (url, {**auth, "If-None-Match": etag}, 304),
        ("/v1/images/no-such-image/render?w=64", auth, 404),
        (url, {}, 401),  # no key, and renders are not public here
        (url, {"Authorization": "Bearer wrong"}, 401),
    ]
    for path, headers, status in cases:
        fast, routed = _both(client, monkeypatch, path, headers)
        assert fast.status_code == status, path
        _same(fast, routed)


def test_other_methods_and_paths_take_the_router(
    client: TestClient, auth: dict[str, str], image_id: str, fast_calls: list[str]
) -> None:
    assert client.head(f"/v1/images/{image_id}/render?w=64", headers=auth).status_code == 405
    slash = client.get(f"/v1/images/{image_id}/render/?w=64", headers=auth, follow_redirects=False)
    assert slash.status_code == 307  # the router's redirect to the path without the slash
    assert client.get(f"/v1/images/{image_id}/original", headers=auth).status_code == 200
    assert fast_calls == []


def test_the_fast_path_is_counted_under_the_route_template(
    client: TestClient, auth: dict[str, str], image_id: str, fast_calls: list[str]
) -> None:
    labels = ("GET", "/v1/images/{image_id}/render", "200")
    before = metrics.HTTP_REQUESTS.labels(*labels)._value.get()
    assert client.get(f"/v1/images/{image_id}/render?w=32", headers=auth).status_code == 200
    assert fast_calls == [image_id]
    assert metrics.HTTP_REQUESTS.labels(*labels)._value.get() == before + 1
