"""Attacks the API fuzzer found (issue 18, item 14), each replayed by hand: numbers
too large for a database column, digits that are not ASCII, an empty change, a live
stream held open forever, and answers the OpenAPI document described wrongly. Each
used to answer 500 or 503 (or break the documented contract); now each is refused
cleanly with problem+json, and the platform keeps serving."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.helpers import make_image
from tests.security import attacks
from tests.security.people import Person, person

HUGE = 10**39  # 40 digits: beyond any SQL integer column


def refused(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def alice(container: Any, client: TestClient) -> Person:
    return person(container, client, "alice")


def finished_job(alice: Person) -> str:
    image = alice.post("/v1/images", content=make_image(64, 48)).json()["id"]
    job = alice.post("/v1/jobs", json={"inputs": [image], "pipeline": [{"op": "flip"}]})
    assert job.status_code == 202, job.text
    for _ in range(400):
        if alice.get(f"/v1/jobs/{job.json()['id']}").json()["state"] not in ("queued", "running"):
            break
    return str(job.json()["id"])


def test_a_40_digit_task_index_is_refused_not_a_server_error(alice: Person) -> None:
    # the issue's own finding: the index reached SQLite, which cannot hold it (500)
    refused(alice.get(f"/v1/jobs/0/tasks/{HUGE}/results/0"))
    job = finished_job(alice)
    body = refused(alice.get(f"/v1/jobs/{job}/tasks/{2**31}/results/summary"))
    assert body["errors"][0]["loc"] == "path.index"
    assert alice.get(f"/v1/jobs/{job}/tasks/{2**31 - 1}/results/summary").status_code == 404
    assert alice.get("/healthz").status_code == 200


def test_a_40_digit_model_version_is_refused_not_a_server_error(alice: Person) -> None:
    spec = {"input_spec": json.dumps({"task": "segmentation", "channels": 1})}
    made = alice.post("/v1/models/m/versions", params=spec, content=attacks.conv_model(1))
    assert made.status_code == 201, made.text
    refused(alice.get(f"/v1/models/m/versions/{HUGE}"))
    refused(alice.delete(f"/v1/models/m/versions/{HUGE}"))
    refused(alice.put("/v1/models/m/aliases/production", json={"version": HUGE}))
    assert alice.get("/v1/models/m/versions/1").status_code == 200


def test_huge_event_cursors_and_annotation_versions_are_refused(alice: Person) -> None:
    sid = alice.post("/v1/studies", json={"name": "s"}).json()["id"]
    refused(alice.get(f"/v1/studies/{sid}/events", params={"before": HUGE}))
    refused(alice.get(f"/v1/studies/{sid}/events/stream", params={"after": HUGE}))
    refused(alice.get("/v1/jobs/x/events", params={"after": HUGE}))
    url = f"/v1/studies/{sid}/images/i/annotations/a"
    refused(alice.get(f"{url}/diff", params={"to": HUGE}))
    refused(alice.post(f"{url}/revert", json={"version": HUGE}))


async def raw_get(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """GET ``path`` with header bytes exactly as given (an HTTP client re-encodes them)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if requested:  # the client stays: is_disconnected() polls with a timeout
            await anyio.sleep_forever()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with contextlib.suppress(Exception):  # the server re-raises after answering 500
        await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_non_ascii_digits_in_last_event_id_replay_from_the_start(alice: Person) -> None:
    # the header byte 0xB2 is "²" in Latin-1: "²".isdigit() is true and int() of it
    # raised, a 500 from one byte
    job = finished_job(alice)
    auth = (b"authorization", alice.auth["Authorization"].encode())
    for raw in (b"\xb2", b"\xb9\xb3", b"9" * 40):
        status, body = alice.client.portal.call(  # the app's own event loop
            raw_get, alice.client.app, f"/v1/jobs/{job}/events", [auth, (b"last-event-id", raw)]
        )
        assert status == 200, body
        assert b"succeeded" in body  # read as no cursor: the whole history


def test_an_empty_change_of_a_study_image_is_422_not_a_backend_outage(alice: Person) -> None:
    # PATCH {} built "UPDATE study_images SET WHERE ...", answered 503 "backend unavailable"
    sid = alice.post("/v1/studies", json={"name": "s"}).json()["id"]
    image = alice.post("/v1/images", content=make_image(64, 48)).json()["id"]
    assert alice.post(f"/v1/studies/{sid}/images", json={"image_id": image}).status_code == 201
    body = refused(alice.patch(f"/v1/studies/{sid}/images/{image}", json={}))
    assert body["detail"] == "nothing to change"
    assert alice.get(f"/v1/studies/{sid}/images").status_code == 200


def test_a_null_display_name_resets_it_instead_of_breaking_the_row(alice: Person) -> None:
    # PATCH {"display_name": null} wrote NULL into a NOT NULL column: a 500 (found by the
    # stateful fuzzer)
    sid = alice.post("/v1/studies", json={"name": "s"}).json()["id"]
    image = alice.post("/v1/images", content=make_image(64, 48), headers={"X-Filename": "a.png"})
    image_id = image.json()["id"]
    linked = alice.post(
        f"/v1/studies/{sid}/images", json={"image_id": image_id, "display_name": "x"}
    )
    assert linked.status_code == 201
    changed = alice.patch(f"/v1/studies/{sid}/images/{image_id}", json={"display_name": None})
    assert changed.status_code == 200, changed.text
    assert changed.json()["display_name"] != "x"  # back to the file's own name


def test_a_live_stream_cannot_be_held_open_forever(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, workspace={"stream_max_s": 0.2})
    container = build_container(settings)
    try:
        with TestClient(create_app(container)) as client:
            owner = person(container, client, "olga")
            sid = owner.post("/v1/studies", json={"name": "s"}).json()["id"]
            # the response ends by itself (a client that never leaves no longer pins it)
            resp = owner.get(f"/v1/studies/{sid}/events/stream")
            assert resp.status_code == 200
            assert 'event: end\ndata: {"reason":"reconnect"}' in resp.text
    finally:
        container.close()


def test_the_openapi_document_describes_what_errors_and_exports_send(
    client: TestClient,
) -> None:
    # clients generated from the document must be able to read the 422 they get
    schema = client.get("/openapi.json").json()
    invalid = schema["paths"]["/v1/jobs"]["post"]["responses"]["422"]["content"]
    assert list(invalid) == ["application/problem+json"]
    assert schema["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status"]
    exports = schema["paths"]["/v1/studies/{study_id}/export/archive"]["get"]["responses"]
    assert list(exports["200"]["content"]) == ["application/zip"]
    geojson = "/v1/studies/{study_id}/images/{image_id}/annotations/export"
    assert list(schema["paths"][geojson]["get"]["responses"]["200"]["content"]) == [
        "application/geo+json"
    ]
