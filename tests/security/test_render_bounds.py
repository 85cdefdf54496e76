"""Attacks on render capacity (issue 18, finding 6): a render that would hold the CPU
for minutes, more renders than the server can compute, and renders whose client has
gone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pyvips
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container, build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.helpers import make_image, make_key

#: the issue's attack: the largest output, a huge blur (minutes of CPU per render)
HEAVY = "w=4000&h=4000&fit=fill&blur=500&format=png"


@contextmanager
def gateway(
    tmp_path: Path, **render: Any
) -> Iterator[tuple[TestClient, dict[str, str], Container]]:
    container = build_container(make_settings(tmp_path, render=render))
    _, key = make_key(container, "admin", role="admin")
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {key}"}, container
    container.close()


def zeros_png(side: int) -> bytes:
    """A PNG of zeros: a few KB of upload, ``side`` x ``side`` pixels to compute."""
    return bytes(pyvips.Image.black(side, side).write_to_buffer(".png"))


def upload(client: TestClient, auth: dict[str, str], data: bytes) -> str:
    resp = client.post("/v1/images", content=data, headers=auth)
    assert resp.status_code in (200, 201), resp.text
    return str(resp.json()["id"])


def test_a_render_that_would_take_minutes_is_stopped_at_its_time_budget(tmp_path: Path) -> None:
    with gateway(tmp_path, time_budget_s=0.5) as (client, auth, _):
        image = upload(client, auth, zeros_png(4000))
        resp = client.get(f"/v1/images/{image}/render?{HEAVY}", headers=auth)
        # then the client hears why, and the gateway goes on serving
        assert resp.status_code == 503, resp.text
        body = resp.json()
        assert body["type"].endswith("/render-timeout") and "budget of 0.5 s" in body["detail"]
        assert "vips" not in resp.text.lower()
        assert client.get(f"/v1/images/{image}/render?w=64", headers=auth).status_code == 200
        # and operators see it counted
        assert (
            'pixelmill_renders_refused_total{reason="time_budget"}' in client.get("/metrics").text
        )


def test_renders_beyond_the_slots_and_the_queue_are_refused_at_once(tmp_path: Path) -> None:
    with gateway(tmp_path, max_concurrent=1, max_queue=0) as (client, auth, container):
        image = upload(client, auth, make_image(64, 48))
        # when every render slot is busy and nothing may wait
        with container.image_service.render_gate.slot():
            resp = client.get(f"/v1/images/{image}/render?w=32", headers=auth)
        # then the render is refused with a time to come back, instead of piling up
        assert resp.status_code == 503, resp.text
        assert resp.json()["type"].endswith("/overloaded") and resp.headers["retry-after"]
        # and once a slot is free it renders
        assert client.get(f"/v1/images/{image}/render?w=32", headers=auth).status_code == 200


def test_a_render_waits_in_the_queue_only_so_long(tmp_path: Path) -> None:
    settings = {"max_concurrent": 1, "max_queue": 4, "queue_timeout_s": 0.3}
    with gateway(tmp_path, **settings) as (client, auth, container):
        image = upload(client, auth, make_image(64, 48))
        with container.image_service.render_gate.slot():
            resp = client.get(f"/v1/images/{image}/render?w=32", headers=auth)
        assert resp.status_code == 503 and "within 0.3 s" in resp.json()["detail"]
        assert container.image_service.render_gate.waiting == 0


def request_then_leave(app: Any, path: str, auth: dict[str, str], leave: threading.Event) -> int:
    """GET ``path`` as a client that disconnects once ``leave`` is set; the status the
    server tried to send."""
    query = path.partition("?")[2].encode()
    headers = [(b"authorization", auth["Authorization"].encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path.partition("?")[0],
        "raw_path": path.partition("?")[0].encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("203.0.113.9", 40000),
        "server": ("testserver", 80),
    }
    sent: list[int] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while not leave.is_set():
            await anyio.sleep(0.01)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    anyio.run(app, scope, receive, send)
    return sent[0]


def test_a_queued_render_whose_client_left_is_never_started(tmp_path: Path) -> None:
    with gateway(tmp_path, max_concurrent=1, max_queue=4) as (client, auth, container):
        image = upload(client, auth, make_image(64, 48))
        path = f"/v1/images/{image}/render?w=40"
        gate = container.image_service.render_gate
        leave = threading.Event()
        with gate.slot():  # every slot busy: the request below waits in the queue
            result: list[int] = []
            waiter = threading.Thread(
                target=lambda: result.append(request_then_leave(client.app, path, auth, leave))
            )
            waiter.start()
            leave.set()  # the client goes away while its render waits
            waiter.join()
        assert result == [499]
        # then it was never rendered: the next ask for the same render is a cache miss
        resp = client.get(path, headers=auth)
        assert resp.status_code == 200 and resp.headers["x-cache"] == "MISS"


def test_a_running_render_is_stopped_when_its_client_leaves(tmp_path: Path) -> None:
    # no time budget: only the client's leaving can end this render early
    with gateway(tmp_path, time_budget_s=0) as (client, auth, _):
        image = upload(client, auth, zeros_png(4000))
        leave = threading.Event()
        timer = threading.Timer(0.5, leave.set)
        timer.start()
        status = request_then_leave(client.app, f"/v1/images/{image}/render?{HEAVY}", auth, leave)
        timer.join()
        assert status == 499
        assert client.get(f"/v1/images/{image}/render?w=64", headers=auth).status_code == 200
