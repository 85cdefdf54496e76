"""Analysis operations in on-the-fly renders: presets drawn over the image, stain views,
CLAHE, side-by-side — and clear 422s for unknown presets."""

from __future__ import annotations

import numpy as np
import pytest
import pyvips
from fastapi.testclient import TestClient

from tests.unit.imaging.analysis import synthetic as syn


@pytest.fixture(autouse=True)
def _logged_in(client: TestClient, auth: dict[str, str]) -> None:
    """These tests render as a logged-in user (images are private by default)."""
    client.headers.update(auth)


def upload_ihc(client: TestClient, auth: dict[str, str]) -> str:
    scene = syn.blobs((160, 200), seed=4)
    positive = scene.truth % 3 == 0
    rgb = syn.brightfield(
        {
            "hematoxylin": np.where(scene.truth > 0, 0.5, 0.0),
            "dab": np.where(positive & (scene.truth > 0), 0.5, 0.0),
        }
    )
    body = pyvips.Image.new_from_array(rgb, interpretation="srgb").write_to_buffer(".png")
    resp = client.post("/v1/images", content=bytes(body), headers=auth)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def decode(content: bytes) -> np.ndarray:
    return np.asarray(pyvips.Image.new_from_buffer(content, "").numpy())


def test_render_draws_an_analysis_preset(client: TestClient, auth: dict[str, str]) -> None:
    image_id = upload_ihc(client, auth)
    resp = client.get(
        f"/v1/images/{image_id}/render", params={"analysis": "ihc-dab-quantification"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    out = decode(resp.content)
    assert out.shape == (160, 200, 3)
    # positive nuclei are outlined in warm class colours (red channel high, blue low)
    warm = (out[..., 0] > 180) & (out[..., 2] < 80)
    assert warm.sum() > 100


def test_render_side_by_side_stain_view_and_clahe(client: TestClient, auth: dict[str, str]) -> None:
    image_id = upload_ihc(client, auth)
    both = client.get(
        f"/v1/images/{image_id}/render", params={"analysis": "he-nuclei", "compare": "true"}
    )
    assert both.status_code == 200 and decode(both.content).shape == (160, 408, 3)
    dab = client.get(f"/v1/images/{image_id}/render", params={"unmix": "dab"})
    assert dab.status_code == 200
    clahe = client.get(f"/v1/images/{image_id}/render", params={"clahe": "2.5", "w": "100"})
    assert clahe.status_code == 200 and decode(clahe.content).shape[1] == 100


def test_unknown_preset_in_render_is_a_422_problem(
    client: TestClient, auth: dict[str, str]
) -> None:
    image_id = upload_ihc(client, auth)
    resp = client.get(f"/v1/images/{image_id}/render", params={"analysis": "no-such-preset"})
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "no-such-preset" in resp.text
    bad = client.get(f"/v1/images/{image_id}/render", params={"unmix": "purple"})
    assert bad.status_code == 422
