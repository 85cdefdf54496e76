"""Analysis presets as async jobs: the objects table, summary and label image come back
as job results; unknown presets are refused at submit time."""

from __future__ import annotations

import numpy as np
import pyvips

from tests.integration.jobs.conftest import Gateway
from tests.unit.imaging.analysis import synthetic as syn


def upload_ihc(gateway: Gateway) -> tuple[str, int]:
    scene = syn.blobs((160, 200), seed=9)
    rgb = syn.brightfield(
        {
            "hematoxylin": np.where(scene.truth > 0, 0.5, 0.0),
            "dab": np.where(scene.truth % 2 == 1, 0.5, 0.0),
        }
    )
    body = bytes(pyvips.Image.new_from_array(rgb, interpretation="srgb").write_to_buffer(".png"))
    resp = gateway.client.post("/v1/images", content=body, headers=gateway.auth)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"]), scene.count


def test_ihc_preset_job_returns_objects_summary_and_labels(gateway: Gateway) -> None:
    image_id, count = upload_ihc(gateway)
    job = gateway.submit(
        kind="pipeline",
        inputs=[image_id],
        params={"pipeline": [{"op": "preset", "name": "ihc-dab-quantification"}]},
    )
    done = gateway.wait(job["id"], timeout=60)
    assert done["state"] == "succeeded", done
    base = f"/v1/jobs/{job['id']}"
    objects = gateway.client.get(f"{base}/results/objects", headers=gateway.auth).json()
    assert len(objects) == count
    assert {"area_px", "dab_od_mean", "dab_class"} <= set(objects[0])
    # one input image: the same shape as many's, an image_id column and a list
    assert {o["image_id"] for o in objects} == {image_id}
    summary = gateway.client.get(f"{base}/results/summary", headers=gateway.auth).json()
    assert isinstance(summary, list) and [s["image_id"] for s in summary] == [image_id]
    ihc = summary[0]["ihc"]
    assert ihc["positive_count"] == (count + 1) // 2
    labels = gateway.client.get(f"{base}/tasks/0/results/labels", headers=gateway.auth)
    assert labels.status_code == 200
    decoded = pyvips.Image.new_from_buffer(labels.content, "").numpy()
    assert decoded.max() == count


def test_unknown_preset_is_refused_at_submit(gateway: Gateway) -> None:
    image_id, _ = upload_ihc(gateway)
    resp = gateway.client.post(
        "/v1/jobs",
        json={
            "kind": "pipeline",
            "inputs": [image_id],
            "params": {"pipeline": [{"op": "preset", "name": "no-such-preset"}]},
        },
        headers=gateway.auth,
    )
    assert resp.status_code == 422
    assert "no-such-preset" in resp.text
