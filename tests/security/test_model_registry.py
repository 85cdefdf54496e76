"""Attacks on the model registry (issue 18 #2): another user's write key used to take
over someone's model — upload a version, repoint ``production``, delete the alias or
the shipped version. Each model has per-user levels: read < edit < manage."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container
from tests.ml_helpers import png
from tests.security import attacks
from tests.security.people import Person, person

pytest.importorskip("onnx")

SPEC = json.dumps({"task": "segmentation", "channels": 1})


@pytest.fixture
def alice(container: Container, client: TestClient) -> Person:
    return person(container, client, "alice")


@pytest.fixture
def bob(container: Container, client: TestClient) -> Person:
    return person(container, client, "bob")


def register(who: Person, name: str) -> object:
    return who.post(
        f"/v1/models/{name}/versions", params={"input_spec": SPEC}, content=attacks.conv_model(1)
    )


def predict(who: Person, ref: str) -> object:
    image = png((np.arange(16 * 16).reshape(16, 16) % 255).astype(np.uint8))
    return who.post(f"/v1/models/{ref}/predict", content=image)


def grant(who: Person, name: str, user_id: str, level: str) -> object:
    return who.put(f"/v1/models/{name}/permissions/{user_id}", json={"level": level})


def test_the_registrant_of_a_new_name_manages_it_and_nobody_else_sees_it(
    alice: Person, bob: Person
) -> None:
    assert register(alice, "tumour").status_code == 201  # type: ignore[attr-defined]
    perms = alice.get("/v1/models/tumour/permissions").json()["items"]
    assert [(p["user_id"], p["level"]) for p in perms] == [(alice.user_id, "manage")]
    assert [m["name"] for m in alice.get("/v1/models").json()["items"]] == ["tumour"]
    assert bob.get("/v1/models").json()["items"] == []


def test_a_reader_predicts_but_cannot_upload_or_move_production(
    container: Container, alice: Person, bob: Person
) -> None:
    register(alice, "tumour")
    assert grant(alice, "tumour", bob.user_id, "read").status_code == 200  # type: ignore[attr-defined]
    assert bob.get("/v1/models/tumour").status_code == 200
    assert predict(bob, "tumour:1").status_code == 200  # type: ignore[attr-defined]
    assert register(bob, "tumour").status_code == 403  # type: ignore[attr-defined]
    moved = bob.put("/v1/models/tumour/aliases/production", json={"version": 1})
    assert moved.status_code == 403
    assert grant(bob, "tumour", bob.user_id, "manage").status_code == 403  # type: ignore[attr-defined]
    assert alice.get("/v1/models/tumour").json()["aliases"] == {}
    denials = [
        (e.action, e.actor_id, e.target_id)
        for e in container.events.list(security=True, newest_first=False)
        if e.action.startswith("denied.model")
    ]
    assert denials == [
        ("denied.model.register", bob.user_id, "tumour"),
        ("denied.model.promote", bob.user_id, "tumour"),
        ("denied.model.grant", bob.user_id, "tumour"),
    ]


def test_an_editor_uploads_versions_but_only_a_manager_moves_or_deletes(
    alice: Person, bob: Person
) -> None:
    register(alice, "tumour")
    grant(alice, "tumour", bob.user_id, "edit")
    assert register(bob, "tumour").status_code == 201  # type: ignore[attr-defined]
    assert bob.put("/v1/models/tumour/aliases/production", json={"version": 2}).status_code == 403
    assert bob.delete("/v1/models/tumour/versions/1").status_code == 403
    assert alice.put("/v1/models/tumour/aliases/production", json={"version": 2}).status_code == 200
    assert bob.delete("/v1/models/tumour/aliases/production").status_code == 403
    # promoted to manage, bob may move production; revoked, the model is gone for him
    grant(alice, "tumour", bob.user_id, "manage")
    assert bob.put("/v1/models/tumour/aliases/production", json={"version": 1}).status_code == 200
    assert alice.delete(f"/v1/models/tumour/permissions/{bob.user_id}").status_code == 204
    assert bob.get("/v1/models/tumour").status_code == 404
    assert bob.get(f"/v1/models/tumour/permissions/{bob.user_id}").status_code == 404


def test_the_audit_names_the_user_behind_every_change(alice: Person, bob: Person) -> None:
    register(alice, "tumour")
    grant(alice, "tumour", bob.user_id, "manage")
    bob.put("/v1/models/tumour/aliases/production", json={"version": 1})
    audit = alice.get("/v1/models/tumour/audit").json()["items"]
    assert [(a["action"], a["actor"]) for a in audit] == [
        ("register", alice.user_id),
        ("grant", alice.user_id),
        ("promote", bob.user_id),
    ]


def test_the_shipped_model_is_readable_by_all_and_only_an_admin_deletes_it(
    container: Container, alice: Person, bob: Person, auth: dict[str, str]
) -> None:
    shipped = container.models.ensure_default()
    assert shipped is not None
    assert bob.get("/v1/models/nuclei").status_code == 200
    assert "nuclei" in [m["name"] for m in bob.get("/v1/models").json()["items"]]
    assert register(bob, "nuclei").status_code == 403  # type: ignore[attr-defined]
    assert bob.delete("/v1/models/nuclei/aliases/production").status_code == 403
    # even a manager who is not an admin cannot delete it
    admin = alice.client
    assert (
        admin.put(
            f"/v1/models/nuclei/permissions/{bob.user_id}", json={"level": "manage"}, headers=auth
        ).status_code
        == 200
    )
    assert bob.delete("/v1/models/nuclei/aliases/production").status_code == 403
    assert bob.delete(f"/v1/models/nuclei/versions/{shipped.version}").status_code == 403
    assert bob.get("/v1/models/nuclei").json()["aliases"] == {"production": shipped.version}
    assert admin.delete("/v1/models/nuclei/aliases/production", headers=auth).status_code == 204


def test_grants_need_a_known_user_and_a_known_level(alice: Person, bob: Person) -> None:
    register(alice, "tumour")
    assert grant(alice, "tumour", "0" * 32, "read").status_code == 404  # type: ignore[attr-defined]
    assert grant(alice, "tumour", bob.user_id, "owner").status_code == 422  # type: ignore[attr-defined]
    level = alice.get(f"/v1/models/tumour/permissions/{bob.user_id}").json()
    assert level == {"model": "tumour", "user_id": bob.user_id, "level": None}


def test_a_name_registered_concurrently_by_someone_else_is_not_taken_over(
    container: Container, alice: Person, bob: Person
) -> None:
    # bob's upload was checked while "tumour" was still free; alice registered it first
    register(alice, "tumour")
    from pixelmill.errors import Conflict

    with pytest.raises(Conflict):
        container.models.register(
            attacks.conv_model(1),
            name="tumour",
            input_spec=json.loads(SPEC),
            actor=bob.user_id,
            manager=bob.user_id,
            new_only=True,
        )
    assert [v["version"] for v in alice.get("/v1/models/tumour").json()["versions"]] == [1]


def test_training_into_someone_elses_model_needs_edit_and_moving_an_alias_manage(
    alice: Person, bob: Person
) -> None:
    from tests.ml_helpers import nuclei_zip

    register(alice, "tumour")
    dataset = bob.post("/v1/datasets", content=nuclei_zip(6)).json()["id"]
    run = {"model": "tumour", "dataset": dataset, "spec": {"epochs": 1}}
    assert bob.post("/v1/training-runs", json=run).status_code == 404
    grant(alice, "tumour", bob.user_id, "edit")
    promoted = bob.post("/v1/training-runs", json={**run, "alias": "production"})
    assert promoted.status_code == 403
    assert bob.get("/v1/jobs").json()["items"] == []


def test_a_model_keeps_a_manager_unless_an_admin_says_otherwise(
    alice: Person, bob: Person, auth: dict[str, str]
) -> None:
    register(alice, "tumour")
    assert alice.delete(f"/v1/models/tumour/permissions/{alice.user_id}").status_code == 409
    assert grant(alice, "tumour", alice.user_id, "read").status_code == 409  # type: ignore[attr-defined]
    grant(alice, "tumour", bob.user_id, "manage")
    assert alice.delete(f"/v1/models/tumour/permissions/{alice.user_id}").status_code == 204
    assert alice.get("/v1/models/tumour").status_code == 404
    assert bob.get(f"/v1/models/tumour/permissions/{bob.user_id}").json()["level"] == "manage"
    assert (
        alice.client.delete(
            f"/v1/models/tumour/permissions/{bob.user_id}", headers=auth
        ).status_code
        == 204
    )
