"""Predictions answered inline (``?store=false``): the same mask as a stored prediction,
nothing stored, drift still counted, the same permissions, and an alias move seen by the
very next prediction although resolutions are cached."""

from __future__ import annotations

import io
import json
from importlib import resources
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pixelmill.imaging.probe import probe
from pixelmill.ml.preprocess import decode
from pixelmill.ml.synthetic import NucleiConfig, nuclei_sample
from pixelmill.runtime.container import Container
from tests.helpers import make_key
from tests.ml_helpers import png

REF = "nuclei@production"


@pytest.fixture
def shipped(container: Container) -> Container:
    container.models.ensure_default()
    return container


def nuclei_png(seed: int = 0, side: int = 96) -> bytes:
    return png(nuclei_sample(seed, 0, NucleiConfig(size=(side, side)))[0])


def upload(client: TestClient, auth: dict[str, str], data: bytes) -> str:
    r = client.post("/v1/images", content=data, headers=auth)
    assert r.status_code in (200, 201), r.text
    return str(r.json()["id"])


def predict(client: TestClient, auth: dict[str, str], image_id: str, **params: Any) -> Any:
    return client.post(
        f"/v1/models/{REF}/predict", params=params, json={"image_id": image_id}, headers=auth
    )


def test_inline_mask_is_the_stored_mask_and_stores_nothing(
    shipped: Container, client: TestClient, auth: dict[str, str]
) -> None:
    # given an uploaded image and the mask a stored prediction keeps
    image_id = upload(client, auth, nuclei_png())
    stored = predict(client, auth, image_id)
    assert stored.status_code == 200, stored.text
    kept = decode(shipped.image_service.original_bytes(stored.json()["mask_image_id"]))
    # (its record, written without reading the PNG back, says what the PNG is)
    record = shipped.images.get(stored.json()["mask_image_id"])
    found = probe(shipped.image_service.original_bytes(record.id), max_pixels=1 << 40)
    assert {k: getattr(record, k) for k in found.columns()} == found.columns()
    assert record.width == record.height == 96 and record.bands == 1
    images = shipped.images.count()
    # when the same image is predicted inline, as PNG and as .npy, by id and by bytes
    as_png = predict(client, auth, image_id, store="false")
    as_npy = client.post(
        f"/v1/models/{REF}/predict?store=false",
        json={"image_id": image_id},
        headers={**auth, "Accept": "application/x-npy"},
    )
    by_bytes = client.post(
        f"/v1/models/{REF}/predict?store=false", content=nuclei_png(seed=5), headers=auth
    )
    # then each answer is the mask itself, pixel for pixel the stored one
    assert as_png.status_code == 200 and as_png.headers["content-type"] == "image/png"
    assert as_png.headers["pixelmill-model-version"] == str(stored.json()["version"])
    assert np.array_equal(decode(as_png.content), kept)
    assert as_npy.headers["content-type"] == "application/x-npy"
    assert np.array_equal(np.load(io.BytesIO(as_npy.content)), kept)
    assert by_bytes.status_code == 200 and decode(by_bytes.content).shape == (96, 96)
    # and not one image (mask or uploaded bytes) was stored
    assert shipped.images.count() == images


def test_inline_refuses_measure_with_a_problem(
    shipped: Container, client: TestClient, auth: dict[str, str]
) -> None:
    image_id = upload(client, auth, nuclei_png())
    r = client.post(
        f"/v1/models/{REF}/predict?store=false",
        json={"image_id": image_id, "measure": True},
        headers=auth,
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "measure" in r.json()["detail"]


def test_drift_counts_every_inline_prediction(
    shipped: Container, client: TestClient, auth: dict[str, str]
) -> None:
    # given three images predicted inline
    ids = [upload(client, auth, nuclei_png(seed)) for seed in range(3)]
    for image_id in ids:
        assert predict(client, auth, image_id, store="false").status_code == 200
    # then the drift window holds all three (the endpoint waits for the bookkeeping)
    drift = client.get(f"/v1/models/{REF}/drift", headers=auth).json()
    assert drift["window"] == 3


def test_queued_drift_statistics_are_counted_on_close(shipped: Container) -> None:
    # given predictions whose drift bookkeeping may still be queued
    image = nuclei_sample(1, 0, NucleiConfig(size=(64, 64)))[0]
    loaded = shipped.inference.load(REF)
    for _ in range(5):
        shipped.inference.run(loaded, image)
    # when the service shuts down
    shipped.inference.close()
    # then none of them was lost
    assert loaded.drift.state().window == 5


def register_private(client: TestClient, auth: dict[str, str], threshold: float) -> int:
    """The shipped ONNX as a version of a model of the admin's own, ``threshold`` in
    its spec (so two versions answer with different masks)."""
    files = resources.files("pixelmill.ml") / "models"
    card = json.loads((files / "nuclei.json").read_text())
    spec = {**card["input_spec"], "threshold": threshold}
    r = client.post(
        "/v1/models/private/versions",
        params={"input_spec": json.dumps(spec)},
        content=(files / "nuclei.onnx").read_bytes(),
        headers=auth,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["version"])


def test_inline_needs_read_on_the_model_like_stored(
    shipped: Container, client: TestClient, auth: dict[str, str]
) -> None:
    # given a model of the admin's and a member who has no level on it
    version = register_private(client, auth, 0.5)
    client.put("/v1/models/private/aliases/production", json={"version": version}, headers=auth)
    record, secret = make_key(shipped, "member", "write")
    member = {"Authorization": f"Bearer {secret}"}
    data = nuclei_png()

    def inline() -> int:
        url = "/v1/models/private@production/predict?store=false"
        return client.post(url, content=data, headers=member).status_code

    # then neither mode tells them the model exists
    assert inline() == 404
    stored = client.post("/v1/models/private@production/predict", content=data, headers=member)
    assert stored.status_code == 404
    # when they are granted read, inline predictions work
    r = client.put(
        f"/v1/models/private/permissions/{record.user_id}", json={"level": "read"}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert inline() == 200


def test_an_alias_move_is_seen_by_the_next_prediction(
    shipped: Container, client: TestClient, auth: dict[str, str]
) -> None:
    # given private@production on a version that cuts at 0.5, predicted once (cached)
    low, high = register_private(client, auth, 0.5), register_private(client, auth, 0.99)
    client.put("/v1/models/private/aliases/production", json={"version": low}, headers=auth)
    data = nuclei_png()
    url = "/v1/models/private@production/predict?store=false"
    first = client.post(url, content=data, headers=auth)
    assert first.headers["pixelmill-model-version"] == str(low)
    # when the alias moves to the version that cuts at 0.99
    moved = client.put(
        "/v1/models/private/aliases/production", json={"version": high}, headers=auth
    )
    assert moved.status_code == 200
    # then the very next prediction uses it (fewer foreground pixels)
    second = client.post(url, content=data, headers=auth)
    assert second.headers["pixelmill-model-version"] == str(high)
    assert (decode(second.content) > 0).sum() < (decode(first.content) > 0).sum()
