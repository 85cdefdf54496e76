"""Who may put an image in a study, and what members see of a study's activity.

Only an image's owner (or a site admin) adds it to a study: a member of a study that
holds someone else's image reads it there but cannot launder it into a study of their
own, where it would outlive their membership. The activity feed shows members what the
live stream shows them: no denials, no admins' reads, no ``before``/``after`` of
security events, no key ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container
from pixelmill.settings import Settings
from tests.conftest import make_settings
from tests.helpers import make_image
from tests.integration.gateway.study_world import StudyWorld, make_world
from tests.integration.gateway.test_study_stream import frames
from tests.security.people import Person, person


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    fast = {"stream_poll_s": 0.05, "stream_recheck_s": 0.1, "stream_keepalive_s": 0.2}
    return make_settings(tmp_path, workspace=fast)


@pytest.fixture
def world(client: TestClient, container: Container) -> StudyWorld:
    return make_world(client, container)


def _study(who: Person, name: str) -> str:
    resp = who.post("/v1/studies", json={"name": name})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _member(owner: Person, sid: str, who: Person, role: str) -> None:
    assert (
        owner.put(f"/v1/studies/{sid}/members/{who.user_id}", json={"role": role}).status_code
        == 200
    )


@pytest.mark.parametrize("role", ["viewer", "annotator", "analyst", "owner"])
def test_a_member_cannot_launder_someone_elses_image_into_their_own_study(
    container: Container, client: TestClient, role: str
) -> None:
    alice, bob, mallory = (person(container, client, n) for n in ("alice", "bob", "mallory"))
    s = _study(alice, "Alice's")
    image = alice.post("/v1/images", content=make_image(40, 30, seed=7)).json()["id"]
    assert alice.post(f"/v1/studies/{s}/images", json={"image_id": image}).status_code == 201
    _member(alice, s, bob, role)
    assert bob.get(f"/v1/images/{image}/original").status_code == 200  # he reads it in S
    bs = _study(bob, "Bob's")
    _member(bob, bs, mallory, "owner")
    refused = bob.post(f"/v1/studies/{bs}/images", json={"image_id": image})
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "only its owner" in refused.json()["detail"]
    assert bob.get(f"/v1/studies/{bs}/images").json()["total"] == 0
    assert mallory.get(f"/v1/images/{image}/original").status_code == 404
    # mallory, who cannot read it, is told nothing about it
    assert mallory.post(f"/v1/studies/{bs}/images", json={"image_id": image}).status_code == 404
    # the refusal is in the audit log, not on the study's feed
    denied = [
        e for e in container.events.list(study_id=bs, limit=50) if e.action.startswith("denied.")
    ]
    assert [(e.action, e.target_id, e.security) for e in denied] == [
        ("denied.image.link", image, True)
    ]
    assert all(
        not e["action"].startswith("denied.")
        for e in bob.get(f"/v1/studies/{bs}/events").json()["items"]
    )
    # once removed from S, bob reads it nowhere
    assert alice.delete(f"/v1/studies/{s}/members/{bob.user_id}").status_code == 204
    assert bob.get(f"/v1/images/{image}/original").status_code == 404


def test_the_owner_links_their_image_anywhere_and_admins_still_may(
    container: Container, client: TestClient
) -> None:
    alice, bob = person(container, client, "alice"), person(container, client, "bob")
    admin = person(container, client, "root", role="admin")
    s, other = _study(alice, "One"), _study(alice, "Two")
    image = alice.post("/v1/images", content=make_image(40, 30, seed=8)).json()["id"]
    for sid in (s, other):
        assert alice.post(f"/v1/studies/{sid}/images", json={"image_id": image}).status_code == 201
    # an analyst re-adding an image the study holds already: nothing new is shared
    _member(alice, s, bob, "analyst")
    assert bob.post(f"/v1/studies/{s}/images", json={"image_id": image}).status_code == 200
    # a site admin acts as an owner (audited), in a study of their own too
    mine = _study(admin, "Admin's")
    assert admin.post(f"/v1/studies/{mine}/images", json={"image_id": image}).status_code == 201


def test_role_errors_read_as_english(container: Container, client: TestClient) -> None:
    owner = person(container, client, "olga")
    sid = _study(owner, "Grammar")
    for role, article in (("annotator", "an"), ("analyst", "an"), ("viewer", "a")):
        member = person(container, client, role)
        _member(owner, sid, member, role)
        detail = member.patch(f"/v1/studies/{sid}", json={"name": "x"}).json()["detail"]
        assert detail == f"{article} {role} may not do 'study.update' in study {sid!r}"
    assert owner.post(f"/v1/studies/{sid}/status", json={"status": "locked"}).status_code == 200
    detail = owner.patch(f"/v1/studies/{sid}", json={"name": "x"}).json()["detail"]
    assert detail == f"study {sid!r} is locked"


def _stream_until(w: StudyWorld, who: str, last_id: int) -> list[dict[str, Any]]:
    url = f"/v1/studies/{w.study_id}/events/stream?after=0"
    shown: list[dict[str, Any]] = []
    with w.client.stream("GET", url, headers=w.as_(who)) as resp:
        for frame in frames(resp.iter_lines()):
            if frame.get("event") == "message":
                shown.append(frame["data"])
            if frame.get("id", -1) >= last_id and frame.get("event") != "ready":
                return shown
    raise AssertionError("the stream ended early")


def test_the_feed_shows_members_what_the_stream_shows(world: StudyWorld) -> None:
    w = world
    sid = w.study_id
    # a denial (vic), a role change (a security event), an admin's read
    assert (
        w.client.post(
            f"/v1/studies/{sid}/status", json={"status": "locked"}, headers=w.as_("vic")
        ).status_code
        == 403
    )
    assert (
        w.client.put(
            f"/v1/studies/{sid}/members/{w.ids['vic']}",
            json={"role": "annotator"},
            headers=w.as_("olga"),
        ).status_code
        == 200
    )
    assert w.client.get(f"/v1/studies/{sid}", headers=w.as_("root")).status_code == 200
    w.new_thread(title="After all that", who="ann")
    logged = w.container.events.list(study_id=sid, limit=500)
    actions = {e.action for e in logged}
    assert {"admin.read", "denied.study.set_status"} <= actions
    assert any(e.security and e.after for e in logged)  # the role change, in the audit log
    assert any(e.key_id for e in logged)
    feed = w.client.get(f"/v1/studies/{sid}/events?limit=500", headers=w.as_("ann")).json()["items"]
    assert feed and feed[0]["action"] == "thread.create"
    for item in feed:
        assert not item["action"].startswith(("denied.", "admin.read")), item
        assert "key_id" not in item and "ip" not in item
        if item["security"]:
            assert item["before"] is None and item["after"] is None, item
    assert any(i["security"] and i["action"].startswith("member.") for i in feed)
    streamed = _stream_until(w, "ann", logged[0].id)
    assert streamed == list(reversed(feed))


def test_searches_cursors_and_unlinks_leak_nothing(world: StudyWorld) -> None:
    w = world
    sid, olga, vic = w.study_id, w.as_("olga"), w.as_("vic")
    # q is text: the study "Liver fibrosis" and its image match no wildcard
    for q in ("_", "%", "L_ver"):
        assert w.client.get("/v1/studies", params={"q": q}, headers=olga).json()["total"] == 0
        found = w.client.get(f"/v1/studies/{sid}/images", params={"q": q}, headers=olga).json()
        assert found["total"] == 0, q
    assert w.client.get("/v1/studies", params={"q": "LIVER"}, headers=olga).json()["total"] == 1
    # another user's image as a cursor answers as a made-up id does
    foreign = w.client.get("/v1/images", params={"after": w.image_id}, headers=vic)
    unknown = w.client.get("/v1/images", params={"after": "0" * 32}, headers=vic)
    assert (foreign.status_code, unknown.status_code) == (404, 404)
    assert foreign.json()["detail"] == unknown.json()["detail"].replace("0" * 32, w.image_id)
    # unlinking unpins the study's threads from the image
    thread = w.new_thread(title="Here", image_id=w.image_id)
    assert (
        w.client.delete(f"/v1/studies/{sid}/images/{w.image_id}", headers=olga).status_code == 204
    )
    pinned = w.client.get(
        f"/v1/studies/{sid}/threads", params={"image_id": w.image_id}, headers=olga
    ).json()
    assert pinned["total"] == 0
    after = w.client.get(f"/v1/studies/{sid}/threads/{thread['id']}", headers=olga).json()
    assert after["image_id"] is None
