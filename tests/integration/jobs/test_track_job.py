"""The ``track`` job: a multi-page TIFF time-lapse goes in through the jobs API, every
frame is segmented, the nuclei are followed, and the per-object and per-track tables
come back as CSV."""

from __future__ import annotations

import csv
import io

import numpy as np
import tifffile

from tests.integration.jobs.conftest import Gateway

FRAMES = 6
# three nuclei: (row, col) at frame 0 and their step per frame, px
PATHS = [((20.0, 14.0), (0.0, 4.0)), ((60.0, 90.0), (1.0, -3.0)), ((95.0, 30.0), (-2.0, 2.0))]


def time_lapse() -> bytes:
    """Bright discs (radius 7) moving over a dim noisy background, as a 6-page TIFF."""
    rng = np.random.default_rng(0)
    rr, cc = np.indices((120, 120))
    frames = rng.normal(20, 3, (FRAMES, 120, 120))
    for t in range(FRAMES):
        for (r0, c0), (dr, dc) in PATHS:
            disc = (rr - r0 - t * dr) ** 2 + (cc - c0 - t * dc) ** 2 <= 49
            frames[t][disc] = 200
    sink = io.BytesIO()
    tifffile.imwrite(sink, np.clip(frames, 0, 255).astype(np.uint8))
    return sink.getvalue()


def upload(gateway: Gateway, body: bytes) -> str:
    resp = gateway.client.post("/v1/images", content=body, headers=gateway.auth)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def csv_rows(gateway: Gateway, job_id: str, name: str) -> list[dict[str, str]]:
    resp = gateway.client.get(f"/v1/jobs/{job_id}/results/{name}?format=csv", headers=gateway.auth)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(resp.text)))


def test_a_time_lapse_job_returns_one_track_per_nucleus_with_its_speed(gateway: Gateway) -> None:
    image = upload(gateway, time_lapse())
    job = gateway.submit(
        kind="track",
        inputs=[image],
        params={
            "pipeline": [{"op": "segment_nuclei", "min_area": 30}],
            "pixel_size_um": 0.5,
            "frame_interval_s": 60,
        },
    )
    done = gateway.wait(job["id"], timeout=60)
    assert done["state"] == "succeeded", done

    tracks = csv_rows(gateway, job["id"], "tracks")
    objects = csv_rows(gateway, job["id"], "objects")

    assert len(tracks) == 3
    assert all(r["start_frame"] == "0" and r["end_frame"] == "5" for r in tracks)
    assert len(objects) == 3 * FRAMES
    speeds = sorted(float(r["mean_speed_px_per_frame"]) for r in tracks)
    truth = sorted(float(np.hypot(*step)) for _, step in PATHS)
    assert np.allclose(speeds, truth, atol=0.3)
    # 0.5 um/px, one frame a minute
    assert np.allclose(
        sorted(float(r["mean_speed_um_per_min"]) for r in tracks), np.array(truth) * 0.5, atol=0.2
    )
    labels = gateway.client.get(
        f"/v1/jobs/{job['id']}/tasks/0/results/labels", headers=gateway.auth
    )
    stack = tifffile.imread(io.BytesIO(labels.content))
    assert stack.shape == (FRAMES, 120, 120)


def test_the_default_preset_and_the_shipped_model_track_the_same_nuclei(gateway: Gateway) -> None:
    gateway.container.models.ensure_default()  # the shipped nuclei@production
    image = upload(gateway, time_lapse())
    by_preset = gateway.submit(kind="track", inputs=[image])
    by_model = gateway.submit(
        kind="track", inputs=[image], params={"model": "nuclei@production", "divisions": False}
    )
    for job in (by_preset, by_model):
        done = gateway.wait(job["id"], timeout=90)
        assert done["state"] == "succeeded", done
        assert done["result"]["tracks"] == 3, done["result"]
        assert done["result"]["frames"] == FRAMES


def test_a_single_image_is_refused_at_submit_with_a_clear_problem(gateway: Gateway) -> None:
    image = gateway.upload()
    resp = gateway.client.post(
        "/v1/jobs", json={"kind": "track", "inputs": [image]}, headers=gateway.auth
    )
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "multi-page TIFF" in resp.json()["detail"]


def test_pipeline_and_model_together_are_refused(gateway: Gateway) -> None:
    image = upload(gateway, time_lapse())
    resp = gateway.client.post(
        "/v1/jobs",
        json={
            "kind": "track",
            "inputs": [image],
            "params": {"model": "nuclei@production", "pipeline": [{"op": "segment_nuclei"}]},
        },
        headers=gateway.auth,
    )
    assert resp.status_code == 422
    assert "either pipeline or model" in resp.text


def test_a_model_version_past_any_that_can_exist_is_refused_at_submit(gateway: Gateway) -> None:
    # it was accepted, then every retry of the run failed the same way (a 500 underneath)
    image = upload(gateway, time_lapse())
    resp = gateway.client.post(
        "/v1/jobs",
        json={
            "kind": "track",
            "inputs": [image],
            "params": {"model": "nuclei:99999999999999999999999"},
        },
        headers=gateway.auth,
    )
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "a number from 1 to 2147483647" in resp.text
