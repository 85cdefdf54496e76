"""Text a request carries: the NUL character is refused everywhere (PostgreSQL's text
columns cannot hold it, and a study name, thread title, search or id with one answered
500 there), and names and titles are not blank."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixelmill.services.gateway.body_limit import has_nul
from pixelmill.settings import Settings
from tests.conftest import make_settings


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return make_settings(tmp_path)
    return make_settings(tmp_path, database={"url": request.getfixturevalue("postgres_url")})


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _study(client: TestClient, key: str) -> str:
    made = client.post("/v1/studies", json={"name": "Liver"}, headers=_auth(key))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _is_nul_refusal(resp: object, where: str) -> None:
    assert resp.status_code == 422, resp.text  # type: ignore[attr-defined]
    problem = resp.json()  # type: ignore[attr-defined]
    assert problem["type"].endswith("/invalid-parameter")
    assert where in problem["detail"] and "NUL" in problem["detail"]


def test_a_nul_in_a_json_body_is_a_422_and_nothing_is_written(
    client: TestClient, admin_key: str
) -> None:
    auth = _auth(admin_key)
    sid = _study(client, admin_key)
    writes = [
        ("post", "/v1/studies", {"name": "a\u0000b"}),
        ("patch", f"/v1/studies/{sid}", {"description": "x\u0000"}),
        ("post", f"/v1/studies/{sid}/threads", {"title": "t\u0000", "body": "hello"}),
        ("post", "/v1/auth/login", {"username": "admin\u0000", "password": "x" * 12}),
    ]
    for method, url, body in writes:
        _is_nul_refusal(client.request(method, url, json=body, headers=auth), "text in the body")
    # nothing was written, and the gateway keeps serving
    studies = client.get("/v1/studies", headers=auth).json()["items"]
    assert [s["name"] for s in studies] == ["Liver"]
    assert client.get(f"/v1/studies/{sid}", headers=auth).json()["description"] == ""
    assert client.get(f"/v1/studies/{sid}/threads", headers=auth).json()["items"] == []


def test_a_nul_in_the_url_is_a_422(client: TestClient, admin_key: str) -> None:
    sid = _study(client, admin_key)
    for url in [
        "/v1/studies?q=%00",
        "/v1/studies/%00",
        "/v1/images/%00",
        "/v1/images?after=a%00",
        "/v1/jobs/%00",
        "/v1/models/%00",
        f"/v1/studies/{sid}/images?q=%00",
        f"/v1/studies/{sid}/threads/%00",
    ]:
        _is_nul_refusal(client.get(url, headers=_auth(admin_key)), "the URL")


def test_the_text_backslash_u0000_is_kept_as_written(client: TestClient, admin_key: str) -> None:
    # an escaped backslash, then "u0000": six characters of text, no NUL
    made = client.post(
        "/v1/studies",
        content=b'{"name": "C:\\\\u0000 share"}',
        headers={**_auth(admin_key), "Content-Type": "application/json"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "C:\\u0000 share"


def test_a_nul_split_between_two_chunks_of_a_streamed_body_is_found(
    client: TestClient, admin_key: str
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "a\\u00'
        yield b'00b"}'

    resp = client.post(
        "/v1/studies",
        content=chunks(),
        headers={**_auth(admin_key), "Content-Type": "application/json"},
    )
    _is_nul_refusal(resp, "text in the body")


@pytest.mark.parametrize(
    ("text", "nul"),
    [
        (rb'"\u0000"', True),
        (rb'"\\u0000"', False),  # an escaped backslash
        (rb'"\\\u0000"', True),  # an escaped backslash, then the escape
        (rb'"u0000"', False),
        (rb'"\u00001"', True),
    ],
)
def test_the_escape_of_nul_is_told_from_text_that_looks_like_it(text: bytes, nul: bool) -> None:
    assert has_nul(text) is nul


def test_names_and_titles_are_not_blank_and_lose_their_surrounding_spaces(
    client: TestClient, admin_key: str
) -> None:
    auth = _auth(admin_key)
    for name in ["   ", "\t\n", ""]:
        assert client.post("/v1/studies", json={"name": name}, headers=auth).status_code == 422
    made = client.post("/v1/studies", json={"name": "  Cohort A  "}, headers=auth)
    assert made.status_code == 201 and made.json()["name"] == "Cohort A"
    sid = made.json()["id"]
    assert client.patch(f"/v1/studies/{sid}", json={"name": " "}, headers=auth).status_code == 422
    threads = f"/v1/studies/{sid}/threads"
    assert client.post(threads, json={"title": "  "}, headers=auth).status_code == 422
    started = client.post(threads, json={"title": " Margins? ", "body": "hi"}, headers=auth)
    assert started.status_code == 201 and started.json()["title"] == "Margins?"
