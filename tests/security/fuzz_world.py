"""Real data for the API fuzzer, made through the API: an admin and a member (each a user
with a key), an image, a finished pipeline job and a finished analysis with results, a
dataset, a model version, a study with a patient, an annotation, a thread with a
message. ``ids`` maps each path parameter name to a real value, for the fuzzer's hooks."""

from __future__ import annotations

import shutil
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyvips
from fastapi.testclient import TestClient

from tests.helpers import make_image, make_key
from tests.ml_helpers import nuclei_zip
from tests.security import attacks
from tests.unit.imaging.analysis import synthetic as syn


@dataclass
class World:
    admin: dict[str, str]
    member: dict[str, str]
    ids: dict[str, list[str]] = field(default_factory=dict)
    #: path template -> path parameters that name one real thing together (a job, its
    #: task and an artifact of that task), offered beside the ids mixed independently
    together: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def _ok(response: Any, *codes: int) -> dict[str, Any]:
    assert response.status_code in (codes or (200, 201)), response.text
    return response.json()  # type: ignore[no-any-return]


def _until_final(client: TestClient, url: str, auth: dict[str, str], key: str) -> dict[str, Any]:
    """Poll ``url`` until its ``key`` leaves the running states (a bounded number of times)."""
    for _ in range(1200):
        body: dict[str, Any] = client.get(url, headers=auth).json()
        if body[key] not in ("queued", "running", "pending"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"{url} did not finish: {body}")


def _he_png(seed: int) -> bytes:
    scene = syn.blobs((120, 160), seed=seed)
    rgb = syn.brightfield(
        {
            "hematoxylin": np.where(scene.truth > 0, 0.6, 0.0),
            "eosin": np.full(scene.truth.shape, 0.1),
        }
    )
    return bytes(pyvips.Image.new_from_array(rgb, interpretation="srgb").write_to_buffer(".png"))


def _feature(x: float, y: float) -> dict[str, Any]:
    ring = [[x, y], [x + 10, y], [x + 10, y + 10], [x, y + 10], [x, y]]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"objectType": "annotation", "name": "seed"},
    }


def build(client: TestClient, container: Any) -> World:
    _, admin = make_key(container, "fuzz admin", "admin", username="root")
    _, member = make_key(container, "fuzz member", "write", username="mia")
    world = World({"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {member}"})
    a = world.admin
    ids = world.ids
    ids["user_id"] = [container.users.by_username("mia").id]
    # a spare key of the admin's: revoking it is fair game (the fuzzer's own key stays)
    spare = _ok(client.post("/v1/keys", json={"name": "spare", "role": "read"}, headers=a))
    ids["key_id"] = [spare["id"]]

    image = _ok(client.post("/v1/images", content=make_image(96, 64), headers=a))["id"]
    he = _ok(client.post("/v1/images", content=_he_png(1), headers=a))["id"]
    ids["image_id"] = [image, he]

    job = _ok(
        client.post("/v1/jobs", json={"inputs": [image], "pipeline": [{"op": "flip"}]}, headers=a),
        202,
    )
    _until_final(client, f"/v1/jobs/{job['id']}", a, "state")
    ids["job_id"] = [job["id"]]

    dataset = _ok(client.post("/v1/datasets?name=fuzz", content=nuclei_zip(4), headers=a))
    ids["dataset_id"] = [dataset["id"]]

    spec = '{"task": "segmentation", "channels": 1}'
    version = _ok(
        client.post(
            "/v1/models/fuzz/versions",
            params={"input_spec": spec},
            content=attacks.conv_model(1),
            headers=a,
        )
    )
    ids["name"] = ["fuzz"]
    ids["ref"] = ["fuzz", f"fuzz:{version['version']}"]
    ids["version"] = [str(version["version"])]
    ids["alias"] = ["production"]

    study = _ok(client.post("/v1/studies", json={"name": "Fuzzed study"}, headers=a))["id"]
    ids["study_id"] = [study]
    _ok(
        client.put(
            f"/v1/studies/{study}/members/{ids['user_id'][0]}", json={"role": "viewer"}, headers=a
        )
    )
    for img in (image, he):
        _ok(client.post(f"/v1/studies/{study}/images", json={"image_id": img}, headers=a))
    ids["patient_id"] = [
        _ok(client.post(f"/v1/studies/{study}/patients", json={}, headers=a))["id"]
    ]
    base = f"/v1/studies/{study}/images/{image}/annotations"
    feature = _ok(client.post(base, json=_feature(5, 5), headers=a))
    ids["annotation_id"] = [feature["pixelmill"]["id"]]

    thread = _ok(client.post(f"/v1/studies/{study}/threads", json={"title": "Seed"}, headers=a))
    ids["thread_id"] = [thread["id"]]
    message = f"/v1/studies/{study}/threads/{thread['id']}/messages"
    ids["message_id"] = [_ok(client.post(message, json={"body": "hello"}, headers=a))["id"]]

    made = _ok(
        client.post(
            f"/v1/studies/{study}/analyses",
            json={"preset": "he-nuclei", "image_ids": [he]},
            headers=a,
        )
    )
    done = _until_final(client, f"/v1/studies/{study}/analyses/{made['id']}", a, "status")
    ids["analysis_id"] = [made["id"]]
    ids["job_id"].append(made["job_id"])
    ids["index"] = ["0"]
    results = _ok(client.get(f"/v1/jobs/{made['job_id']}/results", headers=a))
    links = done["images"][he].get("links", {}).get("study", {})
    artifacts = [r["name"] for r in results.get("artifacts", [])]
    ids["result"] = sorted({*links, *artifacts})
    job = made["job_id"]
    world.together["/v1/jobs/{job_id}/results/{name}"] = [
        {"job_id": job, "name": name} for name in artifacts
    ]
    world.together["/v1/jobs/{job_id}/tasks/{index}/results/{name}"] = [
        {"job_id": job, "index": "0", "name": name} for name in artifacts
    ]
    return world


# --- one world for every example of a stateful run ---------------------------------------
DATABASE = "pixelmill.db"


def freeze(data: Path, frozen: Path) -> None:
    """A copy of the world as seeded: the SQLite database (through SQLite's online backup,
    beside the open connections) and every other file of the data folder."""
    frozen.mkdir(parents=True)
    _backup(data / DATABASE, frozen / DATABASE)
    for entry in data.iterdir():
        if not entry.name.startswith(DATABASE):
            _copy(entry, frozen / entry.name)


def thaw(data: Path, frozen: Path) -> None:
    """Put the world back as :func:`freeze` found it, so each example of a stateful run
    meets the same world: Hypothesis requires an example's choices to lead where they led
    before, and a dataset another example deleted (or a study it archived) turned the same
    choices another way ("Inconsistent data generation", seen in CI)."""
    _backup(frozen / DATABASE, data / DATABASE)
    for entry in data.iterdir():
        if not entry.name.startswith(DATABASE):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for entry in frozen.iterdir():
        if entry.name != DATABASE:
            _copy(entry, data / entry.name)


def _backup(source: Path, target: Path) -> None:
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
