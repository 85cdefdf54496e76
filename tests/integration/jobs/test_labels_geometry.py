"""A step that changes the image's geometry between a segmentation and the steps that
read its labels (overlay, measure) is refused: at submit time with a 422, and, should
such steps run anyway, when they run. Geometry before the segmentation is fine."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import pyvips

from pixelmill.errors import InvalidParameter
from pixelmill.imaging import ops, pipeline
from pixelmill.imaging.ops import OpContext
from tests.integration.jobs.conftest import Gateway
from tests.unit.imaging.analysis import synthetic as syn

CROP = {"op": "crop", "left": 100, "top": 0, "width": 100, "height": 100}
MOVED = [
    [{"op": "segment_nuclei"}, CROP, {"op": "overlay"}],
    [{"op": "segment_nuclei"}, {"op": "rotate", "angle": 90}, {"op": "measure"}, {"op": "overlay"}],
    [{"op": "segment_nuclei"}, {"op": "flip", "direction": "vertical"}, {"op": "measure"}],
]


def nuclei_png() -> bytes:
    scene = syn.blobs((200, 300), seed=4)
    rgb = syn.brightfield({"hematoxylin": np.where(scene.truth > 0, 0.6, 0.0)})
    image = pyvips.Image.new_from_array(rgb, interpretation="srgb")
    return bytes(image.write_to_buffer(".png"))


@pytest.mark.parametrize("steps", MOVED)
def test_geometry_after_segmenting_is_refused_at_parse(steps: list[dict[str, Any]]) -> None:
    with pytest.raises(InvalidParameter, match="reads the segmentation's labels, but a"):
        ops.parse_pipeline(steps)


@pytest.mark.parametrize("steps", MOVED)
def test_geometry_after_segmenting_is_refused_when_the_steps_run(
    steps: list[dict[str, Any]],
) -> None:
    parsed = [ops.parse_step(spec, index=i) for i, spec in enumerate(steps)]  # no checks
    with pytest.raises(InvalidParameter, match="no longer match"):
        pipeline.run(nuclei_png(), parsed, OpContext())


def test_a_job_moving_the_labels_is_refused_at_submit_and_geometry_before_works(
    gateway: Gateway,
) -> None:
    resp = gateway.client.post("/v1/images", content=nuclei_png(), headers=gateway.auth)
    assert resp.status_code == 201, resp.text
    image = resp.json()["id"]
    for steps in MOVED:
        body = {"inputs": [image], "pipeline": steps, "output": {"format": "png"}}
        r = gateway.client.post("/v1/jobs", json=body, headers=gateway.auth)
        assert r.status_code == 422, r.text
        assert "geometry" in r.json()["detail"]
    before = [CROP, {"op": "segment_nuclei"}, {"op": "measure"}, {"op": "overlay"}]
    done = gateway.wait(gateway.submit(inputs=[image], pipeline=before)["id"], timeout=60)
    assert done["state"] == "succeeded", done
    [result] = done["results"]["images"]
    out = gateway.client.get(f"/v1/images/{result}", headers=gateway.auth).json()
    assert (out["width"], out["height"]) == (100, 100)
