"""Study roles over the API: what a viewer, annotator, analyst and owner may do to a
study, a locked study being read-only, archived studies hidden from the list unless
asked for, and non-members seeing nothing (404, never 403)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container
from tests.helpers import make_image
from tests.security.people import Person, person

ROLES = ("viewer", "annotator", "analyst", "owner")


@dataclass
class Study:
    id: str
    members: dict[str, Person]
    outsider: Person


@pytest.fixture
def study(container: Container, client: TestClient) -> Study:
    owner = person(container, client, "owner")
    sid = owner.post("/v1/studies", json={"name": "roles"}).json()["id"]
    members = {"owner": owner}
    for role in ROLES[:-1]:
        members[role] = person(container, client, role)
        r = owner.put(f"/v1/studies/{sid}/members/{members[role].user_id}", json={"role": role})
        assert r.status_code == 200
    return Study(sid, members, person(container, client, "outsider"))


def _image(who: Person, seed: int) -> str:
    return str(who.post("/v1/images", content=make_image(32, 24, seed=seed)).json()["id"])


@pytest.mark.parametrize(
    ("role", "update", "manage", "add_image", "set_status"),
    [
        ("viewer", 403, 403, 403, 403),
        ("annotator", 403, 403, 403, 403),
        ("analyst", 403, 403, 201, 403),
        ("owner", 200, 200, 201, 200),
    ],
)
def test_what_each_role_may_do(
    study: Study, role: str, update: int, manage: int, add_image: int, set_status: int
) -> None:
    me, sid = study.members[role], study.id
    assert me.get(f"/v1/studies/{sid}").json()["my_role"] == role
    assert me.patch(f"/v1/studies/{sid}", json={"description": "x"}).status_code == update
    newcomer = study.outsider.user_id
    r = me.put(f"/v1/studies/{sid}/members/{newcomer}", json={"role": "viewer"})
    assert r.status_code == manage
    r = me.post(f"/v1/studies/{sid}/images", json={"image_id": _image(me, 1)})
    assert r.status_code == add_image
    expected_images = 1 if add_image == 201 else 0
    assert me.get(f"/v1/studies/{sid}/images").json()["total"] == expected_images
    r = me.post(f"/v1/studies/{sid}/status", json={"status": "locked"})
    assert r.status_code == set_status
    status = me.get(f"/v1/studies/{sid}").json()["status"]
    assert status == ("locked" if set_status == 200 else "active")


def test_a_locked_study_is_read_only_until_its_owner_unlocks_it(study: Study) -> None:
    owner, analyst, viewer = (study.members[r] for r in ("owner", "analyst", "viewer"))
    sid = study.id
    assert owner.post(f"/v1/studies/{sid}/status", json={"status": "locked"}).status_code == 200
    assert viewer.get(f"/v1/studies/{sid}").status_code == 200
    assert viewer.get(f"/v1/studies/{sid}/images").status_code == 200
    r = analyst.post(f"/v1/studies/{sid}/images", json={"image_id": _image(analyst, 2)})
    assert r.status_code == 403 and "locked" in r.json()["detail"]
    assert owner.patch(f"/v1/studies/{sid}", json={"name": "renamed"}).status_code == 403
    assert owner.get(f"/v1/studies/{sid}").json()["name"] == "roles"
    assert owner.post(f"/v1/studies/{sid}/status", json={"status": "active"}).status_code == 200
    r = analyst.post(f"/v1/studies/{sid}/images", json={"image_id": _image(analyst, 2)})
    assert r.status_code == 201


def test_archived_studies_are_hidden_from_the_list_unless_asked_for(study: Study) -> None:
    owner, viewer = study.members["owner"], study.members["viewer"]
    assert (
        owner.post(f"/v1/studies/{study.id}/status", json={"status": "archived"}).status_code == 200
    )
    for who in (owner, viewer):
        assert who.get("/v1/studies").json()["total"] == 0
        listed = who.get("/v1/studies", params={"include_archived": True}).json()
        assert [s["id"] for s in listed["items"]] == [study.id]
        assert who.get(f"/v1/studies/{study.id}").json()["status"] == "archived"


def test_a_non_member_gets_404_for_everything_in_the_study(study: Study) -> None:
    outsider, sid = study.outsider, study.id
    assert outsider.get(f"/v1/studies/{sid}").status_code == 404
    assert outsider.patch(f"/v1/studies/{sid}", json={"name": "x"}).status_code == 404
    assert outsider.post(f"/v1/studies/{sid}/status", json={"status": "locked"}).status_code == 404
    assert outsider.get(f"/v1/studies/{sid}/members").status_code == 404
    assert outsider.get("/v1/studies", params={"include_archived": True}).json()["total"] == 0
