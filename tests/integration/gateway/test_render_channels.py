"""Channel toggles over HTTP: a 4-channel fluorescence TIFF rendered as the composite of
the channels the viewer shows, in their colours (render ``channels=``)."""

from __future__ import annotations

import numpy as np
import pyvips
from fastapi.testclient import TestClient


def _fluorescence_tiff() -> bytes:
    """64x32, 4 channels of 16 bits: channel k lights column block k."""
    arr = np.zeros((32, 64, 4), dtype=np.uint16)
    for k in range(4):
        arr[:, 16 * k : 16 * (k + 1), k] = 65535
    image = pyvips.Image.new_from_array(arr).copy(interpretation="multiband")
    return bytes(image.write_to_buffer(".tif"))


def test_a_tile_shows_the_chosen_channels_in_their_colours(
    client: TestClient, auth: dict[str, str]
) -> None:
    made = client.post("/v1/images", content=_fluorescence_tiff(), headers=auth)
    assert made.status_code == 201, made.text
    assert made.json()["bands"] == 4
    url = f"/v1/images/{made.json()['id']}/render"
    query = {"crop": "0,0,64,32", "w": 64, "h": 32, "fit": "fill", "format": "png"}

    resp = client.get(url, params={**query, "channels": "1:ff00ff,3:00ffff"}, headers=auth)

    assert resp.status_code == 200, resp.text
    out = np.asarray(pyvips.Image.new_from_buffer(resp.content, "").numpy())
    centre = [out[16, 16 * k + 8, :3].tolist() for k in range(4)]
    assert centre == [[0, 0, 0], [255, 0, 255], [0, 0, 0], [0, 255, 255]]
    # another choice is another rendition (its own ETag), not a cached copy of the first
    other = client.get(url, params={**query, "channels": "0:ffffff"}, headers=auth)
    assert other.headers["etag"] != resp.headers["etag"]


def test_a_channel_the_image_lacks_is_a_problem(client: TestClient, auth: dict[str, str]) -> None:
    made = client.post("/v1/images", content=_fluorescence_tiff(), headers=auth)
    url = f"/v1/images/{made.json()['id']}/render"

    resp = client.get(url, params={"channels": "9:ff0000"}, headers=auth)

    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "channel 9" in resp.json()["detail"]
