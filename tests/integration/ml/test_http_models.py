"""The ML HTTP API end to end: dataset upload and validation, training as a job,
registry moves, predictions (by id, by bytes, tiled), health, drift, errors."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pixelmill.ml.preprocess import decode
from pixelmill.runtime.container import Container
from tests.helpers import make_key
from tests.jobs_helpers import finished_job
from tests.ml_helpers import TINY_SPEC, TinyModel, nuclei_zip, png, zip_of

pytestmark = pytest.mark.slow


def register_tiny(
    client: TestClient, auth: dict[str, str], tiny: TinyModel, name: str = "tiny"
) -> dict:
    r = client.post(
        f"/v1/models/{name}/versions",
        params={"input_spec": tiny.spec.model_dump_json(), "metrics": '{"dice": 0.5}'},
        content=tiny.onnx,
        headers=auth,
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_dataset_upload_validation_names_files(client: TestClient, auth: dict[str, str]) -> None:
    bad = zip_of(
        {
            "images/a.png": png(np.zeros((8, 8), np.uint8)),
            "masks/b.png": png(np.zeros((8, 8), np.uint8)),
        }
    )
    r = client.post("/v1/datasets", content=bad, headers=auth)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    files = {f["file"] for f in r.json()["files"]}
    assert files == {"images/a.png", "masks/b.png"}
    assert client.post("/v1/datasets", content=b"", headers=auth).status_code == 400
    good = nuclei_zip(6)
    first = client.post("/v1/datasets?name=six&val_fraction=0.34", content=good, headers=auth)
    assert first.status_code == 201 and first.json()["items"] == 6
    assert len(first.json()["split"]["val"]) == 2
    again = client.post("/v1/datasets", content=good, headers=auth)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


def test_train_job_registers_a_version_then_predict(
    client: TestClient, auth: dict[str, str]
) -> None:
    pytest.importorskip("torch")
    dataset = client.post("/v1/datasets", content=nuclei_zip(6), headers=auth).json()["id"]
    bad = client.post(
        "/v1/training-runs",
        json={"model": "tiny", "dataset": dataset, "spec": {"depth": 99}},
        headers=auth,
    )
    assert bad.status_code == 422
    missing = client.post(
        "/v1/training-runs", json={"model": "tiny", "dataset": "nope"}, headers=auth
    )
    assert missing.status_code == 404
    r = client.post(
        "/v1/training-runs",
        json={"model": "tiny", "dataset": dataset, "spec": TINY_SPEC, "alias": "production"},
        headers=auth,
    )
    assert r.status_code == 202, r.text
    job = finished_job(client, r.json()["job_id"], auth)
    assert job["state"] == "succeeded", job
    assert job["result"]["ref"] == "tiny:1"
    version = client.get("/v1/models/tiny/versions/1", headers=auth).json()
    assert version["job_id"] == job["id"] and version["dataset_sha256"]
    assert {"dice", "iou", "pixel_accuracy"} <= set(version["metrics"])
    assert version["card"]["train_config"]["seed"] == 0 and version["reference"]["count"] == 5
    assert client.get(f"/v1/jobs/{job['id']}/results/history", headers=auth).status_code == 200
    run = client.get(f"/v1/training-runs/{job['id']}", headers=auth).json()
    assert run["state"] == "succeeded" and run["epochs"] == 2
    assert [h["epoch"] for h in run["history"]] == [1, 2]
    assert all(h["loss"] > 0 and "val_loss" in h for h in run["history"])
    spec = client.get("/v1/training-runs/spec", headers=auth).json()["properties"]
    assert spec["epochs"]["default"] == 20 and spec["epochs"]["minimum"] == 1
    assert (
        client.get(f"/v1/training-runs/{upload_job(client, auth)}", headers=auth).status_code == 404
    )
    checkpoint = client.get(f"/v1/jobs/{job['id']}/tasks/0/results/checkpoint", headers=auth)
    assert checkpoint.status_code == 200
    import io

    import torch

    state = torch.load(io.BytesIO(checkpoint.content), weights_only=True)
    assert any(k.endswith("weight") for k in state)

    image = np.random.default_rng(0).integers(0, 255, (300, 90), dtype=np.uint8)
    upload = client.post("/v1/images", content=png(image), headers=auth).json()
    pred = client.post(
        "/v1/models/tiny@production/predict",
        json={"image_id": upload["id"], "measure": True},
        headers=auth,
    )
    assert pred.status_code == 200, pred.text
    body = pred.json()
    assert body["version"] == 1 and body["tiles"] == 1  # within ml.tile_size: one pass
    assert "count" in body["measurements"] and body["drift"]["window"] in (0, 1)
    # the drift bookkeeping runs off the request path; the drift endpoint counts it
    drift = client.get("/v1/models/tiny@production/drift", headers=auth).json()
    assert drift["window"] == 1
    mask = client.get(f"/v1/images/{body['mask_image_id']}/original", headers=auth)
    assert decode(mask.content).shape == (300, 90)
    by_bytes = client.post("/v1/models/tiny:1/predict", content=png(image), headers=auth)
    assert by_bytes.status_code == 200 and by_bytes.json()["mask_image_id"] == body["mask_image_id"]


def test_unknown_models_are_404_and_bad_input_4xx(
    client: TestClient, auth: dict[str, str], tiny_model: TinyModel
) -> None:
    register_tiny(client, auth, tiny_model)
    upload = client.post(
        "/v1/images", content=png(np.zeros((32, 32), np.uint8)), headers=auth
    ).json()
    for ref in ("ghost", "ghost@production", "tiny@staging", "tiny:7"):
        r = client.post(f"/v1/models/{ref}/predict", json={"image_id": upload["id"]}, headers=auth)
        assert r.status_code == 404, (ref, r.text)
    assert (
        client.post(
            "/v1/models/tiny:1/predict", json={"image_id": "nope"}, headers=auth
        ).status_code
        == 404
    )
    assert (
        client.post(
            "/v1/models/Bad!/predict", json={"image_id": upload["id"]}, headers=auth
        ).status_code
        == 422
    )
    assert client.post(
        "/v1/models/tiny:1/predict", content=b"not an image", headers=auth
    ).status_code in (415, 422)
    assert (
        client.post("/v1/models/tiny:1/predict", json={"image_id": upload["id"]}).status_code == 401
    )
    assert client.post("/v1/models/tiny/versions", content=b"junk", headers=auth).status_code == 422


def test_registry_moves_over_http(
    client: TestClient, auth: dict[str, str], tiny_model: TinyModel
) -> None:
    register_tiny(client, auth, tiny_model)
    register_tiny(client, auth, tiny_model)
    assert (
        client.put(
            "/v1/models/tiny/aliases/production", json={"version": 1}, headers=auth
        ).status_code
        == 200
    )
    assert (
        client.put(
            "/v1/models/tiny/aliases/production", json={"version": 2}, headers=auth
        ).status_code
        == 200
    )
    assert client.delete("/v1/models/tiny/versions/2", headers=auth).status_code == 409
    r = client.post("/v1/models/tiny/aliases/production/rollback", headers=auth)
    assert r.status_code == 200 and r.json()["version"] == 1
    assert client.delete("/v1/models/tiny/versions/2", headers=auth).status_code == 204
    assert client.get("/v1/models/tiny", headers=auth).json()["aliases"] == {"production": 1}
    actions = [
        a["action"] for a in client.get("/v1/models/tiny/audit", headers=auth).json()["items"]
    ]
    assert actions == ["register", "register", "promote", "promote", "rollback", "delete"]
    assert client.get("/v1/models/tiny/compare?versions=1", headers=auth).json()["versions"] == [1]
    health = client.get("/v1/models/tiny@production/health?load=true", headers=auth).json()
    assert health["loaded"] and health["ready"] and health["version"] == 1
    assert client.get("/v1/models/tiny@production/drift", headers=auth).json()["metric"] == "psi"
    assert any(
        m["version"] == 1 for m in client.get("/v1/inference/models", headers=auth).json()["items"]
    )


def test_cancel_a_running_training_job(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    pytest.importorskip("torch")
    dataset = client.post("/v1/datasets", content=nuclei_zip(6), headers=auth).json()["id"]
    spec = {**TINY_SPEC, "epochs": 10_000, "patience": 1000}  # runs until cancelled
    job_id = client.post(
        "/v1/training-runs", json={"model": "long", "dataset": dataset, "spec": spec}, headers=auth
    ).json()["job_id"]
    import time

    deadline = time.monotonic() + 60
    # the loss curve grows while it trains: wait for two epochs of it
    while len(client.get(f"/v1/training-runs/{job_id}", headers=auth).json()["history"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    run = client.get(f"/v1/training-runs/{job_id}", headers=auth).json()
    assert run["state"] == "running" and run["epochs"] == 10_000
    assert [h["epoch"] for h in run["history"][:2]] == [1, 2]
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=auth).status_code == 200
    job = finished_job(client, job_id, auth, timeout=60)
    assert job["state"] == "cancelled"
    # no version was registered (the model row itself may exist by the time cancel lands)
    assert client.get("/v1/models/long/versions/1", headers=auth).status_code == 404


def test_large_images_are_tiled_and_too_large_ones_413(
    tmp_path: object, tiny_model: TinyModel
) -> None:
    from pixelmill.runtime.container import build_container
    from pixelmill.services.gateway.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, ml={"tile_size": 64, "max_predict_pixels": 20_000})  # type: ignore[arg-type]
    c = build_container(settings)
    _, key = make_key(c, "t", role="admin")
    auth = {"Authorization": f"Bearer {key}"}
    try:
        with TestClient(create_app(c), raise_server_exceptions=False) as client:
            register_tiny(client, auth, tiny_model)
            image = np.random.default_rng(1).integers(0, 255, (100, 150), dtype=np.uint8)
            r = client.post("/v1/models/tiny:1/predict", content=png(image), headers=auth)
            assert r.status_code == 200, r.text
            assert r.json()["tiles"] > 1  # larger than the 64 px tile
            mask = client.get(f"/v1/images/{r.json()['mask_image_id']}/original", headers=auth)
            assert decode(mask.content).shape == (100, 150)
            big = client.post(
                "/v1/images", content=png(np.zeros((150, 150), np.uint8)), headers=auth
            )
            r = client.post(
                "/v1/models/tiny:1/predict", json={"image_id": big.json()["id"]}, headers=auth
            )
            assert r.status_code == 413 and "20000" in r.json()["detail"]
    finally:
        c.close()


def upload_job(client: TestClient, auth: dict[str, str]) -> str:
    """The id of a job that is not a training run (an image pipeline)."""
    image = client.post("/v1/images", content=png(np.zeros((8, 8), np.uint8)), headers=auth)
    r = client.post(
        "/v1/jobs",
        json={
            "kind": "pipeline",
            "inputs": [image.json()["id"]],
            "params": {"pipeline": [{"op": "blur", "sigma": 1}]},
        },
        headers=auth,
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_drift_history_reads_the_flagged_crossings_and_each_alias_now(
    client: TestClient, auth: dict[str, str], container: Container, tiny_model: TinyModel
) -> None:
    from pixelmill.ml.drift import DriftState, flag_note

    register_tiny(client, auth, tiny_model, name="drifty")
    client.put("/v1/models/drifty/aliases/production", json={"version": 1}, headers=auth)
    empty = client.get("/v1/models/drifty/drift-history", headers=auth).json()
    assert empty["items"] == [] and empty["current"][0]["alias"] == "production"
    assert empty["current"][0]["window"] == 0 and empty["current"][0]["version"] == 1
    # what the inference service records when the score crosses the threshold
    state = DriftState(score=0.512, flagged=True, window=40, threshold=0.25, ks={})
    container.models.models.record_event("drifty", "drift", version=1, note=flag_note(state))
    history = client.get("/v1/models/drifty/drift-history", headers=auth).json()
    (point,) = history["items"]
    assert (point["version"], point["score"], point["threshold"], point["window"]) == (
        1,
        0.512,
        0.25,
        40,
    )
    assert client.get("/v1/models/nope/drift-history", headers=auth).status_code == 404
