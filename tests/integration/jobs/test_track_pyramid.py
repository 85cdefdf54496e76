"""The ``track`` job and pyramidal TIFFs: a pyramid's pages are its zoom levels, each
smaller than the last, not frames. It is refused at submit (422), and frames of
different sizes found by a run fail it at once (a permanent failure), never retried
into a raw ``ValueError``."""

from __future__ import annotations

import pytest
import pyvips

from tests.integration.jobs.conftest import Gateway
from tests.integration.jobs.test_track_job import upload


def pyramid() -> bytes:
    """A 600x400 tiled pyramidal TIFF: pages 600x400, 300x200, 150x100 ... (its levels)."""
    image = pyvips.Image.gaussnoise(600, 400, mean=100, sigma=20).cast("uchar")
    body = image.tiffsave_buffer(tile=True, tile_width=64, tile_height=64, pyramid=True)
    return bytes(body)


def test_a_pyramid_is_refused_at_submit_its_levels_are_not_frames(gateway: Gateway) -> None:
    image = upload(gateway, pyramid())
    record = gateway.client.get(f"/v1/images/{image}", headers=gateway.auth).json()
    assert record["pages"] > 2  # the upload counts its levels as pages
    resp = gateway.client.post(
        "/v1/jobs", json={"kind": "track", "inputs": [image]}, headers=gateway.auth
    )
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "a pyramid's levels are not frames" in resp.json()["detail"]
    assert gateway.client.get("/v1/jobs", headers=gateway.auth).json()["items"] == []


def test_frames_of_different_sizes_fail_the_run_at_once(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a pyramid past the checks (as a job submitted before they existed was)
    monkeypatch.setattr("pixelmill.services.jobs.track_kind.check_frames", lambda *_: None)
    image = upload(gateway, pyramid())
    job = gateway.submit(
        kind="track", inputs=[image], params={"pipeline": [{"op": "segment_nuclei"}]}
    )
    # then its run fails on the first attempt, saying why
    done = gateway.wait(job["id"], timeout=60)
    assert done["state"] == "failed", done
    assert done["tasks"][0]["attempts"] == 1, done
    assert "every frame of a time-lapse must have the same size" in done["error"], done
