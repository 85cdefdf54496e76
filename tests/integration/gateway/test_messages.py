"""Threads and messages over HTTP: unread counts per user, kept edits, who may do what,
regions pinned to an image, and no way in for non-members."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container
from tests.integration.gateway.study_world import StudyWorld, make_world


@pytest.fixture
def world(client: TestClient, container: Container) -> StudyWorld:
    return make_world(client, container)


def _unread(w: StudyWorld, who: str) -> tuple[int, int]:
    """(the dashboard's figure, the study summary's figure) for ``who``."""
    mine = w.client.get("/v1/me/unread", headers=w.as_(who)).json()
    study = w.client.get(f"/v1/studies/{w.study_id}", headers=w.as_(who)).json()
    per_study = {i["study_id"]: i["unread_messages"] for i in mine["items"]}
    return per_study.get(w.study_id, 0), study["counts"]["unread_messages"]


def test_each_member_has_unread_counts_until_they_read(world: StudyWorld) -> None:
    w = world
    thread = w.new_thread(title="Fibrosis grading", body="Stage 2 or 3?")
    w.post(thread["id"], "See the portal tract", who="olga")
    # the author never has unread messages of their own; the others have both
    assert _unread(w, "olga") == (0, 0)
    assert _unread(w, "vic") == (2, 2)
    assert _unread(w, "ann") == (2, 2)
    listed = w.client.get(f"/v1/studies/{w.study_id}/threads", headers=w.as_("vic")).json()
    assert [(t["title"], t["messages"], t["unread"]) for t in listed["items"]] == [
        ("Fibrosis grading", 2, 2)
    ]
    # Vic reads the thread: his count clears, Ann's stays
    read = w.client.post(
        f"/v1/studies/{w.study_id}/threads/{thread['id']}/read", headers=w.as_("vic")
    )
    assert read.status_code == 200
    assert _unread(w, "vic") == (0, 0)
    assert _unread(w, "ann") == (2, 2)
    # Vic answers: now Olga has one unread, Vic none
    w.post(thread["id"], "Stage 3", who="vic")
    assert _unread(w, "olga") == (1, 1)
    assert _unread(w, "vic") == (0, 0)
    dashboard = w.client.get("/v1/me/unread", headers=w.as_("ann")).json()
    assert dashboard["total"] == 3
    assert dashboard["items"][0]["name"] == "Liver fibrosis"


def test_a_viewer_may_post_but_not_edit_others_and_edits_are_kept(world: StudyWorld) -> None:
    w = world
    thread = w.new_thread(body="Olga's question")
    first = w.client.get(
        f"/v1/studies/{w.study_id}/threads/{thread['id']}", headers=w.as_("vic")
    ).json()["messages"]["items"][0]
    assert first["author"]["username"] == "olga"
    mine = w.post(thread["id"], "Vic's answer", who="vic")
    base = f"/v1/studies/{w.study_id}/messages"
    # nobody edits someone else's message, not even the owner
    assert (
        w.client.patch(
            f"{base}/{first['id']}", json={"body": "x"}, headers=w.as_("vic")
        ).status_code
        == 403
    )
    assert (
        w.client.patch(
            f"{base}/{mine['id']}", json={"body": "x"}, headers=w.as_("olga")
        ).status_code
        == 403
    )
    # the author edits; the old text is kept and shown on request
    edited = w.client.patch(
        f"{base}/{mine['id']}", json={"body": "Vic's better answer"}, headers=w.as_("vic")
    )
    assert edited.status_code == 200
    assert (edited.json()["body"], edited.json()["edits"]) == ("Vic's better answer", 1)
    history = w.client.get(f"{base}/{mine['id']}/edits", headers=w.as_("ann")).json()["items"]
    assert [h["body"] for h in history] == ["Vic's answer"]
    page = w.client.get(
        f"/v1/studies/{w.study_id}/threads/{thread['id']}/messages?edits=true",
        headers=w.as_("ann"),
    ).json()
    assert [m["history"] for m in page["items"]][1][0]["body"] == "Vic's answer"
    # a viewer cannot delete the owner's message; the owner may remove a viewer's
    assert w.client.delete(f"{base}/{first['id']}", headers=w.as_("vic")).status_code == 403
    assert w.client.delete(f"{base}/{mine['id']}", headers=w.as_("olga")).status_code == 204
    after = w.client.get(
        f"/v1/studies/{w.study_id}/threads/{thread['id']}/messages", headers=w.as_("ann")
    ).json()["items"]
    assert [(m["deleted"], m["body"]) for m in after] == [
        (False, "Olga's question"),
        (True, ""),
    ]


def test_a_thread_pinned_to_a_region_round_trips(world: StudyWorld) -> None:
    w = world
    polygon = {"type": "Polygon", "coordinates": [[[10, 10], [120, 10], [120, 90], [10, 10]]]}
    viewport = {"x": 0, "y": 0, "w": 400, "h": 300, "zoom": 0.5}
    for region in (polygon, viewport):
        made = w.new_thread(title="here", image_id=w.image_id, region=region, who="ann")
        got = w.client.get(
            f"/v1/studies/{w.study_id}/threads/{made['id']}", headers=w.as_("vic")
        ).json()
        assert (got["image_id"], got["region"]) == (w.image_id, region)
        assert got["links"]["image"] == f"/v1/images/{w.image_id}"
    on_image = w.client.get(
        f"/v1/studies/{w.study_id}/threads?image_id={w.image_id}", headers=w.as_("vic")
    ).json()
    assert on_image["total"] == 2
    url = f"/v1/studies/{w.study_id}/threads"
    outside = {
        "title": "x",
        "image_id": w.image_id,
        "region": {"x": 350, "y": 0, "w": 100, "h": 10},
    }
    assert w.client.post(url, json=outside, headers=w.as_("ann")).status_code == 422
    not_ours = {"title": "x", "image_id": "0" * 32}
    assert w.client.post(url, json=not_ours, headers=w.as_("ann")).status_code == 422
    blank = {"title": "x", "body": "   "}
    assert w.client.post(url, json=blank, headers=w.as_("ann")).status_code == 422


def test_resolving_a_thread_is_for_its_author_or_an_analyst(world: StudyWorld) -> None:
    w = world
    thread = w.new_thread(title="Olga's", who="olga")
    url = f"/v1/studies/{w.study_id}/threads/{thread['id']}"
    assert w.client.patch(url, json={"resolved": True}, headers=w.as_("vic")).status_code == 403
    vics = w.new_thread(title="Vic's", who="vic")
    vic_url = f"/v1/studies/{w.study_id}/threads/{vics['id']}"
    done = w.client.patch(vic_url, json={"resolved": True}, headers=w.as_("vic"))
    assert done.status_code == 200 and done.json()["resolved"] is True
    assert w.client.patch(url, json={"resolved": True}, headers=w.as_("olga")).json()["resolved"]
    study = w.client.get(f"/v1/studies/{w.study_id}", headers=w.as_("vic")).json()
    assert study["counts"]["open_threads"] == 0
    reopened = w.client.patch(
        url, json={"resolved": False, "title": "Again"}, headers=w.as_("olga")
    )
    assert (reopened.json()["resolved"], reopened.json()["title"]) == (False, "Again")


def test_a_locked_study_keeps_its_discussion_readable_only(world: StudyWorld) -> None:
    w = world
    thread = w.new_thread(body="before the lock")
    lock = w.client.post(
        f"/v1/studies/{w.study_id}/status", json={"status": "locked"}, headers=w.as_("olga")
    )
    assert lock.status_code == 200
    url = f"/v1/studies/{w.study_id}/threads/{thread['id']}"
    assert (
        w.client.post(f"{url}/messages", json={"body": "x"}, headers=w.as_("olga")).status_code
        == 403
    )
    assert w.client.get(f"{url}/messages", headers=w.as_("vic")).status_code == 200
    assert w.client.post(f"{url}/read", headers=w.as_("vic")).status_code == 200


def test_non_members_get_404_for_every_thread_and_message(world: StudyWorld) -> None:
    w = world
    thread = w.new_thread(body="private")
    msgs = w.client.get(
        f"/v1/studies/{w.study_id}/threads/{thread['id']}/messages", headers=w.as_("olga")
    ).json()["items"]
    message_id = msgs[0]["id"]
    study = f"/v1/studies/{w.study_id}"
    for method, path in (
        ("GET", f"{study}/threads"),
        ("GET", f"{study}/threads/{thread['id']}"),
        ("GET", f"{study}/threads/{thread['id']}/messages"),
        ("POST", f"{study}/threads/{thread['id']}/read"),
        ("GET", f"{study}/messages/{message_id}/edits"),
        ("DELETE", f"{study}/messages/{message_id}"),
    ):
        assert w.client.request(method, path, headers=w.as_("out")).status_code == 404, path
    assert w.client.get("/v1/me/unread", headers=w.as_("out")).json() == {"items": [], "total": 0}
    # a thread of this study is not found through another study, even by its owner
    other = w.client.post("/v1/studies", json={"name": "Other"}, headers=w.as_("out")).json()
    sneaky = f"/v1/studies/{other['id']}/threads/{thread['id']}"
    assert w.client.get(sneaky, headers=w.as_("out")).status_code == 404
    theirs = f"/v1/studies/{other['id']}/messages/{message_id}"
    assert w.client.patch(theirs, json={"body": "x"}, headers=w.as_("out")).status_code == 404


def test_a_browser_session_posts_with_its_csrf_token(world: StudyWorld) -> None:
    w = world
    thread = w.new_thread(body="hi")
    csrf = w.login_vic()
    url = f"/v1/studies/{w.study_id}/threads/{thread['id']}/messages"
    assert w.client.post(url, json={"body": "no token"}).status_code == 403
    posted = w.client.post(url, json={"body": "with token"}, headers={"X-CSRF-Token": csrf})
    assert posted.status_code == 201
    assert posted.json()["author"]["username"] == "vic"
