"""The audit log answers "who did what, and who was refused": a key without the scope a
route needs and a browser request without its CSRF token are ``denied.*`` events like
other refusals; uploads and deletes are recorded with actor, target and the request's
id; an admin reading a study's annotations leaves a trace of what was read."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container
from tests.helpers import make_image, make_key
from tests.integration.gateway.study_world import StudyWorld, make_world
from tests.ml_helpers import add_model_version, nuclei_zip


@pytest.fixture
def world(client: TestClient, container: Container) -> StudyWorld:
    return make_world(client, container)


def events(w: StudyWorld, action: str) -> list[dict[str, Any]]:
    """The admin's view of the log: events of ``action``, newest first."""
    resp = w.client.get(f"/v1/audit/events?action={action}", headers=w.as_("root"))
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]  # type: ignore[no-any-return]


def test_a_key_without_the_needed_scope_is_a_logged_refusal(world: StudyWorld) -> None:
    # given Olga's read-only key
    w = world
    key, secret = make_key(w.container, "olga reads", "read", username="olga")
    # when she uploads with it: 403
    resp = w.client.post(
        "/v1/images",
        content=make_image(8, 8),
        headers={"Authorization": f"Bearer {secret}", "X-Request-ID": "req-scope-1"},
    )
    assert resp.status_code == 403
    # then the admin sees who was refused what, with which key, in which request
    (denial,) = events(w, "denied.scope")
    assert denial["actor_username"] == "olga" and denial["key_id"] == key.id
    assert denial["target_type"] == "route" and denial["target_id"] == "POST /v1/images"
    assert denial["after"]["needed"] == "write" and denial["after"]["scope"] == "read"
    assert denial["request_id"] == resp.headers["x-request-id"] == "req-scope-1"
    assert denial["security"] is True


def test_a_browser_request_without_its_csrf_token_is_a_logged_refusal(world: StudyWorld) -> None:
    w = world
    csrf = w.login_vic()
    thread = w.new_thread(body="hi")
    url = f"/v1/studies/{w.study_id}/threads/{thread['id']}/messages"
    # when Vic's browser session posts without the token: 403, logged
    assert w.client.post(url, json={"body": "forged"}).status_code == 403
    (denial,) = events(w, "denied.csrf")
    assert denial["actor_username"] == "vic" and denial["key_id"] is None
    assert denial["target_id"].startswith("POST /v1/studies/{study_id}/threads/")
    assert denial["request_id"]
    # with the token it goes through, and nothing more is refused
    ok = w.client.post(url, json={"body": "real"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    assert len(events(w, "denied.csrf")) == 1


def test_uploads_and_deletes_are_recorded_with_actor_target_and_request(
    world: StudyWorld,
) -> None:
    w = world
    headers = {**w.as_("olga"), "X-Request-ID": "req-upload-1", "X-Filename": "slide-7.png"}
    up = w.client.post("/v1/images", content=make_image(20, 10, seed=3), headers=headers)
    assert up.status_code == 201
    image_id = up.json()["id"]
    again = w.client.post("/v1/images", content=make_image(20, 10, seed=3), headers=w.as_("olga"))
    assert again.status_code == 200  # the same bytes: the same image
    uploads = [e for e in events(w, "image.upload") if e["target_id"] == image_id]
    assert [e["after"]["created"] for e in uploads] == [False, True]  # newest first
    first = uploads[1]
    assert (first["actor_username"], first["target_type"]) == ("olga", "image")
    assert first["request_id"] == "req-upload-1" and first["after"]["filename"] == "slide-7.png"
    # when the admin deletes it, the delete names the admin and the image's owner
    gone = w.client.delete(f"/v1/images/{image_id}", headers=w.as_("root"))
    assert gone.status_code == 204
    (deleted,) = events(w, "image.delete")
    assert (deleted["actor_username"], deleted["target_id"]) == ("root", image_id)
    assert deleted["after"]["owner_id"] == w.ids["olga"]
    assert deleted["request_id"] == gone.headers["x-request-id"]
    # a refused delete (not hers to delete) records no delete
    assert w.client.delete(f"/v1/images/{w.image_id}", headers=w.as_("vic")).status_code == 404
    assert len(events(w, "image.delete")) == 1


def test_an_admin_reading_a_studys_annotations_leaves_a_trace_of_what(world: StudyWorld) -> None:
    w = world
    study = w.client.get(f"/v1/studies/{w.study_id}", headers=w.as_("root"))
    assert study.status_code == 200
    url = f"/v1/studies/{w.study_id}/images/{w.image_id}/annotations"
    for _ in range(3):  # a viewer polling: one event, not one per read
        assert w.client.get(url, headers=w.as_("root")).status_code == 200
    reads = [e["after"] for e in events(w, "admin.read") if e["study_id"] == w.study_id]
    assert {"read": "annotation.read"} in reads and {"read": "study.read"} in reads
    assert len(reads) == 2
    # a member's own reads are not admin reads
    assert w.client.get(url, headers=w.as_("vic")).status_code == 200
    assert len([e for e in events(w, "admin.read") if e["study_id"] == w.study_id]) == 2


def test_an_admin_reading_others_datasets_and_models_leaves_a_trace(world: StudyWorld) -> None:
    # given Olga's dataset, and a model nobody granted the admin anything on
    w = world
    up = w.client.post("/v1/datasets", content=nuclei_zip(), headers=w.as_("olga"))
    assert up.status_code == 201, up.text
    dataset_id = up.json()["id"]
    add_model_version(w.container.models.models, "tumour")
    # when Olga reads her dataset, and the admin reads it and the model's audit twice
    assert w.client.get(f"/v1/datasets/{dataset_id}", headers=w.as_("olga")).status_code == 200
    for _ in range(2):
        assert w.client.get(f"/v1/datasets/{dataset_id}", headers=w.as_("root")).status_code == 200
        assert w.client.get("/v1/models/tumour/audit", headers=w.as_("root")).status_code == 200
    # then each of the admin's reads is one event; Olga's own read is none
    reads = [
        (e["actor_username"], e["target_type"], e["target_id"]) for e in events(w, "admin.read")
    ]
    assert sorted(reads) == [("root", "dataset", dataset_id), ("root", "model", "tumour")]


def test_the_admin_finds_every_event_of_one_request_by_its_id(world: StudyWorld) -> None:
    # given two uploads by Olga, in two requests
    w = world
    for n, rid in ((8, "req-one"), (9, "req-two")):
        resp = w.client.post(
            "/v1/images", content=make_image(n, n), headers={**w.as_("olga"), "X-Request-ID": rid}
        )
        assert resp.status_code == 201, resp.text
    # when the admin asks for the second request's events
    resp = w.client.get("/v1/audit/events?request_id=req-two", headers=w.as_("root"))
    assert resp.status_code == 200, resp.text
    # then only its upload comes back
    items = resp.json()["items"]
    assert [(e["action"], e["request_id"]) for e in items] == [("image.upload", "req-two")]
