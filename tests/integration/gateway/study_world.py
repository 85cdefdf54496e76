"""A study with people in it, made through the API, for the message and stream tests:
Olga owns it, Vic is a viewer, Ann an annotator, Out is no member. Each has an API key;
Vic also has a password, to log in with a browser session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from pixelmill.backends.metadata.events import Actor
from pixelmill.runtime.container import Container
from tests.helpers import make_image, make_key

VIC_PASSWORD = "correct horse battery"


@dataclass
class StudyWorld:
    client: TestClient
    container: Container
    study_id: str
    image_id: str
    ids: dict[str, str]  # name -> user id
    keys: dict[str, dict[str, str]]  # name -> Authorization header

    def as_(self, name: str) -> dict[str, str]:
        return self.keys[name]

    def new_thread(self, who: str = "olga", **body: Any) -> dict[str, Any]:
        body.setdefault("title", "A thread")
        resp = self.client.post(
            f"/v1/studies/{self.study_id}/threads", json=body, headers=self.keys[who]
        )
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def post(self, thread_id: str, text: str, who: str = "olga") -> dict[str, Any]:
        resp = self.client.post(
            f"/v1/studies/{self.study_id}/threads/{thread_id}/messages",
            json={"body": text},
            headers=self.keys[who],
        )
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def login_vic(self) -> str:
        """Log Vic in on the client's cookie jar; returns the CSRF token."""
        resp = self.client.post(
            "/v1/auth/login", json={"username": "vic", "password": VIC_PASSWORD}
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["csrf_token"])


def make_world(client: TestClient, container: Container) -> StudyWorld:
    ids: dict[str, str] = {}
    keys: dict[str, dict[str, str]] = {}
    container.accounts.create_user(Actor(), "vic", password=VIC_PASSWORD)
    for name in ("olga", "vic", "ann", "out"):
        _, secret = make_key(container, name, "write", username=name)
        ids[name] = container.users.by_username(name).id
        keys[name] = {"Authorization": f"Bearer {secret}"}
    _, admin = make_key(container, "root", "admin", username="root")
    keys["root"] = {"Authorization": f"Bearer {admin}"}
    ids["root"] = container.users.by_username("root").id
    study = client.post("/v1/studies", json={"name": "Liver fibrosis"}, headers=keys["olga"])
    assert study.status_code == 201, study.text
    study_id = study.json()["id"]
    for name, role in (("vic", "viewer"), ("ann", "annotator")):
        resp = client.put(
            f"/v1/studies/{study_id}/members/{ids[name]}", json={"role": role}, headers=keys["olga"]
        )
        assert resp.status_code == 200, resp.text
    image = client.post("/v1/images", content=make_image(400, 300), headers=keys["olga"])
    assert image.status_code == 201, image.text
    image_id = image.json()["id"]
    link = client.post(
        f"/v1/studies/{study_id}/images", json={"image_id": image_id}, headers=keys["olga"]
    )
    assert link.status_code == 201, link.text
    return StudyWorld(client, container, study_id, image_id, ids, keys)
