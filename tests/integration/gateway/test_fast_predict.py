"""POST /v1/models/{ref}/predict with a JSON body answered by the gateway's fast path
(services/gateway/fast_predict.py) is the same API as through FastAPI's route: the same
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
from pixelmill.runtime.container import Container
from pixelmill.services.gateway import fast_predict
from pixelmill.services.gateway.fast_predict import FastPredict
from pixelmill.services.gateway.routes import predict
from tests.ml_helpers import png

REF = "nuclei@production"
URL = f"/v1/models/{REF}/predict"
#: headers that differ between any two answers
_OWN = {"date", "x-request-id", "ratelimit-remaining", "ratelimit-reset"}


@pytest.fixture
def image_id(container: Container, client: TestClient, auth: dict[str, str]) -> str:
    from pixelmill.ml.synthetic import NucleiConfig, nuclei_sample

    container.models.ensure_default()
    data = png(nuclei_sample(0, 0, NucleiConfig(size=(64, 64)))[0])
    return str(client.post("/v1/images", content=data, headers=auth).json()["id"])


@pytest.fixture
def fast_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The references the fast path predicted with (it calls the route's own function)."""
    calls: list[str] = []

    async def answer(request: Any, ref: str, key: Any, query: Any) -> Any:
        calls.append(ref)
        return await predict.answer(request, ref, key, query)

    fake = SimpleNamespace(answer=answer, PredictQuery=predict.PredictQuery)
    monkeypatch.setattr(fast_predict, "predict", fake)
    return calls


@contextmanager
def _routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The fast path stepping aside: every request reaches FastAPI's router."""

    async def aside(self: FastPredict, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    with monkeypatch.context() as patched:
        patched.setattr(FastPredict, "__call__", aside)
        yield


def _both(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, url: str, **kwargs: Any
) -> tuple[httpx.Response, httpx.Response]:
    kwargs["headers"] = {**kwargs.get("headers", {}), "X-Request-ID": "same-request"}
    fast = client.post(url, **kwargs)
    with _routed(monkeypatch):
        routed = client.post(url, **kwargs)
    return fast, routed


def _same(fast: httpx.Response, routed: httpx.Response) -> None:
    assert fast.status_code == routed.status_code
    own = {k: v for k, v in fast.headers.items() if k not in _OWN}
    assert own == {k: v for k, v in routed.headers.items() if k not in _OWN}
    assert fast.content == routed.content


@pytest.mark.parametrize(
    ("query", "body", "status"),
    [
        ("store=false", {}, 200),  # the mask itself
        ("store=false&threshold=0.7", {"threshold": 0.3}, 200),  # the body's wins
        ("store=0", {"scale": 0.5}, 200),
        ("store=false", {"measure": True}, 422),  # measure needs the JSON answer
        ("store=false", {"image_id": "no-such-image"}, 404),
        ("store=false", {"bogus": 1}, 422),  # not a field of the body
        ("store=maybe", {}, 422),  # FastAPI's refusal of the query
        ("store=false&scale=99", {}, 422),
        ("store=true&store=false", {}, 200),  # repeated: FastAPI decides
        ("store=false&other=1", {}, 200),  # unknown: FastAPI ignores it
    ],
)
def test_a_prediction_is_answered_the_same_both_ways(
    client: TestClient,
    auth: dict[str, str],
    image_id: str,
    fast_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
    query: str,
    body: dict[str, Any],
    status: int,
) -> None:
    payload = {"image_id": image_id, **body}
    fast, routed = _both(client, monkeypatch, f"{URL}?{query}", json=payload, headers=auth)
    assert fast.status_code == status, fast.text
    _same(fast, routed)
    took = "maybe" not in query and "99" not in query and "&store" not in query
    assert fast_calls == ([REF] if took and "other" not in query else [])
    if status >= 400:
        assert fast.headers["content-type"] == "application/problem+json"
        assert fast.json()["instance"] == URL


def test_a_stored_prediction_is_the_same_json_both_ways(
    client: TestClient,
    auth: dict[str, str],
    image_id: str,
    fast_calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client.post(URL, json={"image_id": image_id}, headers=auth)  # the mask stored once
    fast, routed = _both(client, monkeypatch, URL, json={"image_id": image_id}, headers=auth)
    assert fast.status_code == 200 and fast_calls == [REF, REF]
    a, b = fast.json(), routed.json()
    assert a.pop("drift")["window"] <= b.pop("drift")["window"]  # counted in between
    assert a == b and a["mask_image_id"]  # the same mask, stored once


def test_refusals_are_the_same_both_ways(
    client: TestClient, auth: dict[str, str], image_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [
        ({}, 401),  # no key
        ({"Authorization": "Bearer wrong"}, 401),
        ({**auth}, 404),  # an unknown model
    ]
    for headers, status in cases:
        url = URL if status != 404 else "/v1/models/nobody@production/predict?store=false"
        fast, routed = _both(client, monkeypatch, url, json={"image_id": image_id}, headers=headers)
        assert fast.status_code == status
        _same(fast, routed)


def test_image_bytes_and_other_paths_take_the_router(
    client: TestClient, auth: dict[str, str], image_id: str, fast_calls: list[str]
) -> None:
    data = client.get(f"/v1/images/{image_id}/original", headers=auth).content
    assert client.post(f"{URL}?store=false", content=data, headers=auth).status_code == 200
    slash = client.post(
        f"{URL}/", json={"image_id": image_id}, headers=auth, follow_redirects=False
    )
    assert slash.status_code == 307  # the router's redirect to the path without the slash
    assert fast_calls == []


def test_the_fast_path_is_counted_under_the_route_template(
    client: TestClient, auth: dict[str, str], image_id: str, fast_calls: list[str]
) -> None:
    labels = ("POST", "/v1/models/{ref}/predict", "200")
    before = metrics.HTTP_REQUESTS.labels(*labels)._value.get()
    r = client.post(f"{URL}?store=false", json={"image_id": image_id}, headers=auth)
    assert r.status_code == 200 and fast_calls == [REF]
    assert metrics.HTTP_REQUESTS.labels(*labels)._value.get() == before + 1
