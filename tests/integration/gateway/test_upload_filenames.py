"""The ``X-Filename`` of a raw upload is stored as the client wrote it, in any script."""

from __future__ import annotations

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient

from tests.helpers import make_image


def _upload(client: TestClient, auth: dict[str, str], name: bytes, seed: int) -> dict:
    data = make_image(40, 30, seed=seed)
    resp = client.post("/v1/images", content=data, headers={**auth, "X-Filename": name})  # type: ignore[dict-item]
    return {"status": resp.status_code, **resp.json()}


@pytest.mark.parametrize("name", ["café.png", "細胞_01.tif", "ÅngströmΩ.png", "plain.png"])
def test_a_raw_utf8_filename_is_stored_as_written(
    client: TestClient, auth: dict[str, str], name: str
) -> None:
    # given a name sent as raw UTF-8 bytes (as curl and most HTTP libraries send it)
    body = _upload(client, auth, name.encode(), seed=len(name))
    # then it reads back the same, not as mojibake ("cafÃ©.png")
    assert body["status"] == 201, body
    assert body["filename"] == name
    assert client.get(f"/v1/images/{body['id']}", headers=auth).json()["filename"] == name


def test_an_rfc5987_percent_encoded_filename_is_decoded(
    client: TestClient, auth: dict[str, str]
) -> None:
    # given a client that can only send ASCII headers (a browser's fetch)
    body = _upload(client, auth, b"UTF-8''caf%C3%A9%201.png", seed=7)
    assert body["status"] == 201, body
    assert body["filename"] == "café 1.png"


def _upload_raw(client: TestClient, auth: dict[str, str], name: bytes) -> httpx.Response:
    """Upload with the header's bytes as given: the test client re-encodes every header
    as UTF-8, an ASGI transport sends the bytes a real client would."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as raw:
            headers = [*auth.items(), ("X-Filename", name)]
            return await raw.post("/v1/images", content=make_image(40, 30, seed=9), headers=headers)

    return anyio.run(send)


@pytest.mark.parametrize("name", ["café.png".encode("latin-1"), b"UTF-8''caf%E9.png"])
def test_a_filename_that_is_not_utf8_is_refused_naming_the_header(
    client: TestClient, auth: dict[str, str], name: bytes
) -> None:
    # given a latin-1 name (0xE9 alone is not UTF-8): guessing would store a wrong name
    resp = _upload_raw(client, auth, name)
    # then the upload is refused with a problem that names the header, and nothing stored
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert problem["header"] == "X-Filename"
    assert "X-Filename" in problem["detail"] and "UTF-8" in problem["detail"]
    assert client.get("/v1/images", headers=auth).json()["items"] == []
