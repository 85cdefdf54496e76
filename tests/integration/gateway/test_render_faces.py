"""Faces through the render URL: ``blur_faces`` hides the face of a stored portrait and
``gravity=face`` crops to it, with the detector the composition root wires in; a bad
``pixelate_faces`` is a 422 problem."""

from __future__ import annotations

import numpy as np
import pyvips
from fastapi.testclient import TestClient

from tests.faces_helpers import astronaut, detector


def test_blur_faces_and_gravity_face_over_http(client: TestClient, auth: dict[str, str]) -> None:
    pixels, _ = astronaut()
    wide = np.full((512, 1536, 3), 90, np.uint8)
    wide[:, 1024:] = pixels  # the face near the right edge
    body = bytes(
        pyvips.Image.new_from_array(wide).copy(interpretation="srgb").write_to_buffer(".png")
    )
    image_id = client.post("/v1/images", content=body, headers=auth).json()["id"]

    def get(query: str) -> np.ndarray:
        resp = client.get(f"/v1/images/{image_id}/render?{query}&format=png", headers=auth)
        assert resp.status_code == 200, resp.text
        return np.asarray(pyvips.Image.new_from_buffer(resp.content, "").numpy())

    crop = get("w=200&h=200&gravity=face")
    found = detector().boxes(crop)
    assert len(found) and found[0, 4] >= 0.9
    assert not (detector().boxes(get("w=200&h=200"))[:, 4] >= 0.9).any()
    blurred = get("blur_faces=1")
    assert blurred.shape == wide.shape
    assert not (detector().boxes(blurred)[:, 4] >= 0.9).any()
    assert (blurred[:, :1100] == wide[:, :1100]).all()  # far from the face: untouched

    bad = client.get(f"/v1/images/{image_id}/render?pixelate_faces=1", headers=auth)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
