"""IDOR attacks (issue 12 #4, issue 18 #3): bob, a member with a write key of his own,
takes ids of alice's things and asks for them. Each answer is the very 404 an unknown
id gets, so bob learns nothing, not even that the id exists. Admins see everything, and
their reads of others' data are in the event log. Sharing stays deliberate: a signed
render URL, or a study that alice adds bob to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixelmill.services.gateway.signing import sign_url
from tests.helpers import make_image
from tests.integration.jobs.conftest import Gateway, job_settings, open_gateway
from tests.ml_helpers import nuclei_zip, png
from tests.security import attacks
from tests.security.people import Person, person

SIGNING_KEY = "idor-test-signing-key-0123456789"
UNKNOWN = "0" * 32


@dataclass
class World:
    gw: Gateway
    alice: Person
    bob: Person
    admin: Person
    image: str  # alice's


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = job_settings(tmp_path, security={"signing_key": SIGNING_KEY})
    with contextmanager(open_gateway)(settings) as gw:
        alice = person(gw.container, gw.client, "alice")
        bob = person(gw.container, gw.client, "bob")
        admin = person(gw.container, gw.client, "root", "admin")
        image = alice.post("/v1/images", content=make_image(80, 60, seed=7)).json()["id"]
        yield World(gw, alice, bob, admin, image)


def not_found_like_unknown(who: Person, method: str, path: str, real: str, **kw: Any) -> None:
    """``path`` with ``real`` in it answers exactly as it does with an unknown id."""
    got = who.client.request(method, path.format(real), headers=who.auth, **kw)
    unknown = who.client.request(method, path.format(UNKNOWN), headers=who.auth, **kw)
    assert got.status_code == unknown.status_code == 404, (method, path, got.text)
    assert got.headers["content-type"] == "application/problem+json"
    assert got.json()["title"] == unknown.json()["title"]
    assert got.json()["detail"].replace(real, "ID") == unknown.json()["detail"].replace(
        UNKNOWN, "ID"
    )


IMAGE_ROUTES = [
    ("GET", "/v1/images/{}"),
    ("GET", "/v1/images/{}/meta"),
    ("GET", "/v1/images/{}/original"),
    ("GET", "/v1/images/{}/render?w=40"),
    ("DELETE", "/v1/images/{}"),
]


def test_bob_gets_404_for_alices_image_however_he_asks(world: World) -> None:
    for method, path in IMAGE_ROUTES:
        not_found_like_unknown(world.bob, method, path, world.image)
    assert world.image not in [i["id"] for i in world.bob.get("/v1/images").json()["items"]]
    assert world.alice.get(f"/v1/images/{world.image}").status_code == 200  # not deleted


def test_bob_gets_404_for_alices_jobs_and_their_result_images(world: World) -> None:
    alice, bob = world.alice, world.bob
    job = alice.post(
        "/v1/jobs",
        json={"inputs": [world.image], "pipeline": [{"op": "resize", "width": 40}]},
    ).json()["id"]
    world.gw.auth = alice.auth
    assert world.gw.wait(job)["state"] == "succeeded"
    results = alice.get(f"/v1/jobs/{job}/results").json()
    (result_image,) = [i["image"] for i in results["images"]]
    tables = alice.post("/v1/jobs", json={"kind": "test.artifacts", "inputs": [world.image]})
    with_artifacts = world.gw.wait(tables.json()["id"])["id"]
    for method, path in [
        ("GET", "/v1/jobs/{}"),
        ("GET", "/v1/jobs/{}/results"),
        ("GET", "/v1/jobs/{}/events"),
        ("POST", "/v1/jobs/{}/cancel"),
    ]:
        not_found_like_unknown(bob, method, path, job)
    not_found_like_unknown(bob, "GET", "/v1/jobs/{}/results/summary", with_artifacts)
    not_found_like_unknown(bob, "GET", "/v1/jobs/{}/tasks/0/results/summary", with_artifacts)
    # the job's output images inherit the job's access
    for method, path in IMAGE_ROUTES:
        not_found_like_unknown(bob, method, path, result_image)
    assert job not in [j["id"] for j in bob.get("/v1/jobs").json()["items"]]
    assert alice.get(f"/v1/images/{result_image}").status_code == 200


def test_bob_cannot_feed_alices_image_to_a_job_of_his(world: World) -> None:
    r = world.bob.post(
        "/v1/jobs", json={"inputs": [world.image], "pipeline": [{"op": "grayscale"}]}
    )
    assert r.status_code == 422
    assert "do not exist" in r.json()["detail"]
    assert world.bob.get("/v1/jobs").json()["items"] == []


def test_re_uploading_alices_exact_file_reveals_nothing(world: World) -> None:
    again = world.bob.post("/v1/images", content=make_image(80, 60, seed=7))
    assert again.status_code == 201  # as for any new file: no "200, you have it already"
    assert again.json()["id"] != world.image
    assert world.bob.delete(f"/v1/images/{again.json()['id']}").status_code == 204
    assert world.alice.get(f"/v1/images/{world.image}/original").status_code == 200


def test_an_admins_read_of_alices_image_is_in_the_event_log(world: World) -> None:
    assert world.admin.get(f"/v1/images/{world.image}").status_code == 200
    reads = [
        e
        for e in world.gw.container.events.list(security=True)
        if e.action == "admin.read" and e.target_id == world.image
    ]
    assert len(reads) == 1 and reads[0].actor_id == world.admin.user_id


def test_a_signed_render_url_still_shares_an_image_deliberately(world: World) -> None:
    url = sign_url(SIGNING_KEY, f"/v1/images/{world.image}/render?w=40&format=png")
    r = world.bob.client.get(url)  # no key at all: the signature is the permission
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert world.bob.client.get(url.replace("w=40", "w=80")).status_code == 403


def test_a_study_grant_lets_bob_render_alices_image_until_he_is_removed(world: World) -> None:
    alice, bob, image = world.alice, world.bob, world.image
    study = alice.post("/v1/studies", json={"name": "shared"}).json()["id"]
    assert alice.post(f"/v1/studies/{study}/images", json={"image_id": image}).status_code == 201
    assert bob.get(f"/v1/images/{image}/render?w=40").status_code == 404
    r = alice.put(f"/v1/studies/{study}/members/{bob.user_id}", json={"role": "viewer"})
    assert r.status_code == 200
    assert bob.get(f"/v1/images/{image}/render?w=40").status_code == 200
    assert bob.get(f"/v1/studies/{study}/images").json()["total"] == 1
    not_found_like_unknown(bob, "DELETE", "/v1/images/{}", image)  # a viewer cannot delete
    assert alice.delete(f"/v1/studies/{study}/members/{bob.user_id}").status_code == 204
    not_found_like_unknown(bob, "GET", "/v1/images/{}/render?w=40", image)
    not_found_like_unknown(bob, "GET", "/v1/studies/{}", study)


def test_bob_gets_404_for_alices_study(world: World) -> None:
    alice, bob = world.alice, world.bob
    study = alice.post("/v1/studies", json={"name": "private"}).json()["id"]
    for method, path, body in [
        ("GET", "/v1/studies/{}", None),
        ("PATCH", "/v1/studies/{}", {"name": "mine now"}),
        ("GET", "/v1/studies/{}/members", None),
        ("PUT", "/v1/studies/{}/members/" + bob.user_id, {"role": "owner"}),
        ("GET", "/v1/studies/{}/images", None),
        ("POST", "/v1/studies/{}/images", {"image_id": world.image}),
        ("GET", "/v1/studies/{}/events", None),
        ("DELETE", "/v1/studies/{}", None),
    ]:
        not_found_like_unknown(bob, method, path, study, json=body)
    assert bob.get("/v1/studies").json()["total"] == 0
    assert alice.get(f"/v1/studies/{study}").json()["name"] == "private"


def test_bob_gets_404_for_alices_dataset_and_cannot_train_on_it(world: World) -> None:
    alice, bob = world.alice, world.bob
    dataset = alice.post("/v1/datasets", content=nuclei_zip(6)).json()["id"]
    for method, path in [("GET", "/v1/datasets/{}"), ("DELETE", "/v1/datasets/{}")]:
        not_found_like_unknown(bob, method, path, dataset)
    assert bob.get("/v1/datasets").json()["items"] == []
    run = bob.post("/v1/training-runs", json={"model": "stolen", "dataset": dataset})
    assert run.status_code == 404
    job = bob.post(
        "/v1/jobs", json={"kind": "train", "params": {"model": "stolen", "dataset": dataset}}
    )
    assert job.status_code == 404
    assert alice.get(f"/v1/datasets/{dataset}").status_code == 200


def test_the_same_dataset_bytes_make_separate_datasets_sharing_one_stored_object(
    world: World,
) -> None:
    alice, bob = world.alice, world.bob
    data = nuclei_zip(6)
    mine = alice.post("/v1/datasets", content=data)
    theirs = bob.post("/v1/datasets", content=data)
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert mine.json()["id"] != mine.json()["sha256"][:32]  # ids are random, not the content
    assert alice.post("/v1/datasets", content=data).json()["id"] == mine.json()["id"]
    storage = world.gw.container.storage
    key = f"datasets/{mine.json()['sha256'][:2]}/{mine.json()['sha256']}.zip"
    assert alice.delete(f"/v1/datasets/{mine.json()['id']}").status_code == 204
    assert storage.exists(key)  # bob's dataset still uses the bytes
    assert bob.get(f"/v1/datasets/{theirs.json()['id']}").status_code == 200
    assert bob.delete(f"/v1/datasets/{theirs.json()['id']}").status_code == 204
    assert not storage.exists(key)


def test_bob_gets_404_for_alices_model(world: World) -> None:
    alice, bob = world.alice, world.bob
    spec = {"input_spec": '{"task": "segmentation", "channels": 1}'}
    onnx = attacks.conv_model(1)
    assert alice.post("/v1/models/tumour/versions", params=spec, content=onnx).status_code == 201
    alice.put("/v1/models/tumour/aliases/production", json={"version": 1})
    image = png((np.arange(256).reshape(16, 16) % 255).astype(np.uint8))
    unknown = "m" + "0" * 10
    for method, path, kw in [
        ("GET", "/v1/models/{}", {}),
        ("GET", "/v1/models/{}/versions/1", {}),
        ("GET", "/v1/models/{}/audit", {}),
        ("GET", "/v1/models/{}/compare", {}),
        ("GET", "/v1/models/{}:1/health", {}),
        ("GET", "/v1/models/{}@production/drift", {}),
        ("POST", "/v1/models/{}:1/predict", {"content": image}),
        ("POST", "/v1/models/{}/versions", {"params": spec, "content": onnx}),
        ("PUT", "/v1/models/{}/aliases/production", {"json": {"version": 1}}),
        ("DELETE", "/v1/models/{}/aliases/production", {}),
        ("DELETE", "/v1/models/{}/versions/1", {}),
        ("GET", "/v1/models/{}/permissions", {}),
        ("PUT", "/v1/models/{}/permissions/" + bob.user_id, {"json": {"level": "manage"}}),
    ]:
        got = bob.client.request(method, path.format("tumour"), headers=bob.auth, **kw)
        assert got.status_code == 404, (method, path, got.text)
        if method != "POST" or "versions" not in path:  # a new name may be registered
            other = bob.client.request(method, path.format(unknown), headers=bob.auth, **kw)
            assert other.status_code == 404
            assert got.json()["detail"].replace("tumour", "X") == other.json()["detail"].replace(
                unknown, "X"
            )
    assert bob.get("/v1/models").json()["items"] == []
    assert alice.post("/v1/models/tumour:1/predict", content=image).status_code == 200
    assert [m["model"] for m in alice.get("/v1/inference/models").json()["items"]] == ["tumour"]
    assert bob.get("/v1/inference/models").json()["items"] == []
    body = alice.get("/v1/models/tumour").json()
    assert body["aliases"] == {"production": 1} and len(body["versions"]) == 1


def test_bob_cannot_run_alices_model_inside_a_pipeline_job(world: World) -> None:
    alice, bob = world.alice, world.bob
    spec = {"input_spec": '{"task": "segmentation", "channels": 1}'}
    alice.post("/v1/models/tumour/versions", params=spec, content=attacks.conv_model(1))
    mine = bob.post("/v1/images", content=make_image(32, 24, seed=3)).json()["id"]
    world.gw.auth = bob.auth
    outcomes = {}
    for ref in ("tumour:1", "unknown:1"):
        step = {"op": "segment", "model": ref}
        job = bob.post("/v1/jobs", json={"inputs": [mine], "pipeline": [step]}).json()["id"]
        outcomes[ref] = world.gw.wait(job)
    assert outcomes["tumour:1"]["state"] == outcomes["unknown:1"]["state"] == "failed"
    errors = {ref: job["tasks"][0]["error"] for ref, job in outcomes.items()}
    assert errors == {"tumour:1": "no model 'tumour'", "unknown:1": "no model 'unknown'"}
    assert bob.get(f"/v1/jobs/{outcomes['tumour:1']['id']}/results").json()["images"] == []
    # alice, its manager, may
    world.gw.auth = alice.auth
    step = {"op": "segment", "model": "tumour:1"}
    own = alice.post("/v1/images", content=make_image(32, 24, seed=4)).json()["id"]
    job = alice.post("/v1/jobs", json={"inputs": [own], "pipeline": [step]}).json()["id"]
    assert world.gw.wait(job)["state"] == "succeeded"
