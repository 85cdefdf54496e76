"""The ``faces`` job: each input image's faces come back as boxes with scores, as the
job's ``faces`` result; an image without faces gives none."""

from __future__ import annotations

import numpy as np
import pyvips

from pixelmill.ml.faces import iou
from tests.faces_helpers import astronaut
from tests.integration.jobs.conftest import Gateway


def upload(gateway: Gateway, pixels: np.ndarray) -> str:
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    body = bytes(image.write_to_buffer(".png"))
    resp = gateway.client.post("/v1/images", content=body, headers=gateway.auth)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def test_the_faces_job_returns_the_boxes_of_each_image(gateway: Gateway) -> None:
    pixels, truth = astronaut()
    portrait = upload(gateway, pixels)
    empty = upload(gateway, np.full((120, 160, 3), 200, np.uint8))
    job = gateway.submit(kind="faces", inputs=[portrait, empty])
    done = gateway.wait(job["id"], timeout=60)
    assert done["state"] == "succeeded", done
    resp = gateway.client.get(f"/v1/jobs/{job['id']}/results/faces", headers=gateway.auth)
    assert resp.status_code == 200, resp.text
    faces = resp.json()
    assert [f["image"] for f in faces] == [portrait]  # default min_score 0.9: one face
    assert faces[0]["score"] >= 0.9
    assert iou(np.asarray([faces[0]["box"]], np.float32), truth)[0, 0] >= 0.5


def test_bad_faces_params_are_refused_at_submit(gateway: Gateway) -> None:
    image = gateway.upload()
    resp = gateway.client.post(
        "/v1/jobs",
        json={"kind": "faces", "inputs": [image], "params": {"min_score": 2}},
        headers=gateway.auth,
    )
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "min_score" in resp.text
