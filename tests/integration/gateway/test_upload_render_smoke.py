from __future__ import annotations

import pyvips
from fastapi.testclient import TestClient

from tests.helpers import make_image


def test_upload_then_render_thumbnail(client: TestClient, auth: dict[str, str]) -> None:
    # given an uploaded 640x480 JPEG
    resp = client.post("/v1/images", content=make_image(640, 480), headers=auth)
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["id"]
    # when a 300x200 cover render is asked for
    out = client.get(f"/v1/images/{image_id}/render", params={"w": 300, "h": 200})
    # then a 300x200 JPEG comes back
    assert out.status_code == 200
    assert out.headers["content-type"] == "image/jpeg"
    rendered = pyvips.Image.new_from_buffer(out.content, "")
    assert (rendered.width, rendered.height) == (300, 200)
