"""GET /v1/studies/{id}/events/stream: a browser (cookie session) sees new messages live,
resumes after a reconnect with Last-Event-ID, and a removed member's stream ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container
from pixelmill.settings import Settings
from tests.conftest import make_settings
from tests.integration.gateway.study_world import StudyWorld, make_world

#: a guard against a stream that never sends: the test fails instead of hanging
GUARD_S = 30.0


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    # quick polls and re-checks, and a comment line often, so a quiet stream still
    # hands the reader a line to look at
    fast = {"stream_poll_s": 0.05, "stream_recheck_s": 0.1, "stream_keepalive_s": 0.2}
    if request.param == "sqlite":
        return make_settings(tmp_path, workspace=fast)
    url = request.getfixturevalue("postgres_url")
    return make_settings(tmp_path, workspace=fast, database={"url": url})


@pytest.fixture
def world(client: TestClient, container: Container) -> StudyWorld:
    return make_world(client, container)


def frames(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Each SSE message as {"id", "event", "data"}; comment lines as {"comment": ...}."""
    deadline = time.monotonic() + GUARD_S
    frame: dict[str, Any] = {}
    for line in lines:
        assert time.monotonic() < deadline, "the stream stalled"
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line.startswith("id: "):
            frame["id"] = int(line[4:])
        elif line.startswith("event: "):
            frame["event"] = line[7:]
        elif line.startswith("data: "):
            frame["data"] = orjson.loads(line[6:])
        elif not line and frame:
            frame.setdefault("event", "message")
            yield frame
            frame = {}


def _until(stream: Iterator[dict[str, Any]], event: str) -> dict[str, Any]:
    for frame in stream:
        if frame.get("event") == event:
            return frame
    raise AssertionError(f"the stream ended before a {event!r} event")


def test_a_browser_session_sees_a_new_message_live_and_resumes(world: StudyWorld) -> None:
    w = world
    thread = w.new_thread(title="Grading")
    w.login_vic()  # from here on the client carries Vic's session cookie, no CSRF on GET
    url = f"/v1/studies/{w.study_id}/events/stream"
    with w.client.stream("GET", url) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        stream = frames(resp.iter_lines())
        ready = _until(stream, "ready")
        assert ready["data"]["role"] == "viewer"
        # Olga posts while Vic watches
        posted = w.post(thread["id"], "Stage 3, look at the bridging")
        live = _until(stream, "message")
    assert live["data"]["action"] == "message.post"
    assert live["data"]["target_id"] == posted["id"]
    assert live["data"]["actor"]["username"] == "olga"
    assert live["data"]["after"] == {"thread_id": thread["id"], "body": posted["body"]}
    # Vic reconnects with the id of the last event he had before the message: it is
    # replayed first, then a later one arrives live
    resume = {"Last-Event-ID": str(ready["id"])}
    with w.client.stream("GET", url, headers=resume) as resp:
        stream = frames(resp.iter_lines())
        _until(stream, "ready")
        replayed = _until(stream, "message")
        w.post(thread["id"], "Agreed", who="ann")
        later = _until(stream, "message")
    assert (replayed["id"], replayed["data"]["action"]) == (live["id"], "message.post")
    assert later["id"] > replayed["id"]
    assert later["data"]["actor"]["username"] == "ann"
    # resuming after the newest event replays nothing
    with w.client.stream("GET", url, headers={"Last-Event-ID": str(later["id"])}) as resp:
        stream = frames(resp.iter_lines())
        _until(stream, "ready")
        assert next(stream) == {"comment": "keepalive"}


def test_a_removed_members_stream_ends(world: StudyWorld) -> None:
    w = world
    url = f"/v1/studies/{w.study_id}/events/stream"
    with w.client.stream("GET", url, headers=w.as_("vic")) as resp:
        stream = frames(resp.iter_lines())
        _until(stream, "ready")
        removed = w.client.delete(
            f"/v1/studies/{w.study_id}/members/{w.ids['vic']}", headers=w.as_("olga")
        )
        assert removed.status_code == 204
        end = _until(stream, "end")
        assert end["data"] == {"reason": "access"}
        assert list(stream) == []  # and the response is over
    # and he cannot open a new one
    assert w.client.get(url, headers=w.as_("vic")).status_code == 404


def test_security_events_are_not_streamed_and_outsiders_get_404(world: StudyWorld) -> None:
    w = world
    url = f"/v1/studies/{w.study_id}/events/stream"
    assert w.client.get(url, headers=w.as_("out")).status_code == 404
    assert w.client.get(url).status_code == 401
    with w.client.stream("GET", url, headers=w.as_("ann")) as resp:
        stream = frames(resp.iter_lines())
        _until(stream, "ready")
        # Vic is denied something (a security event), then starts a thread
        denied = w.client.post(
            f"/v1/studies/{w.study_id}/status", json={"status": "locked"}, headers=w.as_("vic")
        )
        assert denied.status_code == 403
        w.new_thread(title="Vic's question", who="vic")
        first = _until(stream, "message")
    assert first["data"]["action"] == "thread.create"
    assert first["data"]["after"]["title"] == "Vic's question"
