"""The ``segment`` operation runs a registry model inside job pipelines."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pixelmill.ml.preprocess import decode
from pixelmill.ml.synthetic import NucleiConfig, nuclei_sample
from tests.integration.ml.test_http_models import register_tiny
from tests.jobs_helpers import finished_job
from tests.ml_helpers import TinyModel, png

pytestmark = pytest.mark.slow


def test_segment_in_a_pipeline_job(
    client: TestClient, auth: dict[str, str], tiny_model: TinyModel
) -> None:
    register_tiny(client, auth, tiny_model, name="cells")
    assert (
        client.put(
            "/v1/models/cells/aliases/production", json={"version": 1}, headers=auth
        ).status_code
        == 200
    )
    image, _ = nuclei_sample(4, 0, NucleiConfig(size=(80, 96)))
    image_id = client.post("/v1/images", content=png(image), headers=auth).json()["id"]
    r = client.post(
        "/v1/jobs",
        json={
            "inputs": [image_id],
            "pipeline": [{"op": "segment", "model": "cells@production"}],
            "output": {"format": "png"},
        },
        headers=auth,
    )
    assert r.status_code == 202, r.text
    job = finished_job(client, r.json()["id"], auth)
    assert job["state"] == "succeeded", job
    results = client.get(f"/v1/jobs/{job['id']}/results", headers=auth).json()
    result_id = results["images"][0]["image"]
    mask = decode(client.get(f"/v1/images/{result_id}/original", headers=auth).content)
    assert mask.shape[:2] == (80, 96) and set(np.unique(mask)) <= {0, 255}


def test_segment_with_an_unknown_model_fails_the_job(
    client: TestClient, auth: dict[str, str]
) -> None:
    image_id = client.post(
        "/v1/images", content=png(np.zeros((16, 16), np.uint8)), headers=auth
    ).json()["id"]
    r = client.post(
        "/v1/jobs",
        json={"inputs": [image_id], "pipeline": [{"op": "segment", "model": "ghost@production"}]},
        headers=auth,
    )
    job = finished_job(client, r.json()["id"], auth)
    assert job["state"] == "failed" and "ghost" in str(job)
