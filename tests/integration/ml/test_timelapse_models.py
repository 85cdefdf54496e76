"""Time-lapse models through the HTTP API: a dataset of multi-page TIFF sequences,
training as a job, the registered version, predictions on a multi-frame image (one mask
per frame, tracks with their table) and the ``track`` job segmenting with the model."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from fastapi.testclient import TestClient

from pixelmill.ml.sequence_dataset import build_archive
from pixelmill.ml.synthetic_timelapse import TimelapseConfig, nuclei_timelapse
from tests.jobs_helpers import finished_job
from tests.ml_helpers import png, zip_of

pytestmark = pytest.mark.slow

#: few, large nuclei on 32² frames: a tiny network learns them in a few seconds
SMALL = TimelapseConfig(size=(32, 32), frames=6, count=(2, 4), radius=(5.0, 8.0))


def _tiff(stack: np.ndarray) -> bytes:
    sink = io.BytesIO()
    tifffile.imwrite(sink, stack, photometric="minisblack")
    return sink.getvalue()


def _sequences(count: int, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for i in range(count):
        frames, labels = nuclei_timelapse(seed, i, SMALL)
        out.append((f"seq{i}", frames, labels.astype(np.uint16)))
    return out


def test_time_lapse_dataset_problems_are_named(client: TestClient, auth: dict[str, str]) -> None:
    (_, frames, labels), *_ = _sequences(1)
    files = {
        "images/a.tif": _tiff(frames),
        "masks/a.tif": _tiff(labels[:4]),  # fewer frames than the image
        "images/b.tif": _tiff(frames[0]),  # a single page
        "masks/b.tif": _tiff(labels[0]),
        "images/c.png": png(frames[0]),
        "images/d.tif": _tiff(frames),  # no mask
    }
    r = client.post("/v1/datasets?task=timelapse", content=zip_of(files), headers=auth)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problems: dict[str, str] = {}
    for f in r.json()["files"]:
        problems[f["file"]] = problems.get(f["file"], "") + f["problem"] + "; "
    assert "has 4 frames but the image has 6" in problems["masks/a.tif"]
    assert "has one frame" in problems["images/b.tif"]
    assert "multi-page TIFF" in problems["images/c.png"]
    assert "has no mask stack" in problems["images/d.tif"]


def test_train_a_time_lapse_model_then_segment_and_track_a_sequence(
    client: TestClient, auth: dict[str, str]
) -> None:
    pytest.importorskip("torch")
    # given a time-lapse dataset of synthetic moving nuclei
    data = build_archive(_sequences(6))
    up = client.post("/v1/datasets?task=timelapse&val_fraction=0.34", content=data, headers=auth)
    assert up.status_code == 201, up.text
    assert up.json()["summary"]["frames"] == [6]
    dataset = up.json()["id"]
    # a window longer than the sequences is refused at submit
    too_long = {"task": "timelapse", "frames": 8, "depth": 2, "patch": 32}
    r = client.post(
        "/v1/training-runs",
        json={"model": "tl", "dataset": dataset, "spec": too_long},
        headers=auth,
    )
    assert r.status_code == 422 and "only 6" in r.text
    # when a recurrent U-Net is trained on it as a job
    spec = {
        "task": "timelapse",
        "frames": 3,
        "depth": 2,
        "width": 8,
        "patch": 32,
        "epochs": 2,
        "steps_per_epoch": 15,
        "batch_size": 2,
        "lr": 0.01,
        "threads": 1,
    }
    r = client.post(
        "/v1/training-runs",
        json={"model": "tl", "dataset": dataset, "spec": spec, "alias": "production"},
        headers=auth,
    )
    assert r.status_code == 202, r.text
    job = finished_job(client, r.json()["job_id"], auth)
    assert job["state"] == "succeeded", job
    # then it is a registered version with its window in the input spec and card
    version = client.get("/v1/models/tl/versions/1", headers=auth).json()
    assert version["input_spec"]["task"] == "timelapse" and version["input_spec"]["frames"] == 3
    assert version["card"]["train_config"]["arch"] == "runet"
    assert version["card"]["training"]["window_frames"] == 3
    assert version["card"]["training"]["onnx_max_abs_diff"] < 1e-4
    assert version["metrics"]["val_dice"] > 0.3

    # a sequence it never saw, longer than the window, on frames of another size
    frames, truth = nuclei_timelapse(1, 0, TimelapseConfig(size=(40, 48), frames=7, count=(3, 3)))
    image = client.post("/v1/images", content=_tiff(frames), headers=auth).json()["id"]
    r = client.post(
        "/v1/models/tl@production/timelapse",
        json={"image_id": image, "track": True, "tracking": {"objects": True}},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model"], body["version"], body["task"]) == ("tl", 1, "timelapse")
    assert body["frames"] == 7 and len(body["foreground_fraction"]) == 7
    masks = client.get(f"/v1/images/{body['mask_image_id']}", headers=auth).json()
    assert masks["pages"] == 7 and (masks["width"], masks["height"]) == (48, 40)
    # about one track per nucleus (3; a tiny, briefly trained network may split or
    # miss one); each with its speed and areas
    assert len(np.unique(truth)) - 1 == 3
    assert 1 <= body["tracking"]["tracks"] <= 6, body["tracking"]
    assert len(body["tracks"]) == body["tracking"]["tracks"]
    first = body["tracks"][0]
    assert first["mean_speed_px_per_frame"] is not None and first["area_mean_px"] > 0
    assert {o["frame"] for o in body["objects"]} <= set(range(7))

    # the predict route dispatches a time-lapse model the same way (masks, no tracks)
    plain = client.post("/v1/models/tl/predict", json={"image_id": image}, headers=auth).json()
    assert plain["frames"] == 7 and "tracks" not in plain
    # a single image is refused with a clear problem
    single = client.post("/v1/images", content=png(frames[0]), headers=auth).json()["id"]
    r = client.post("/v1/models/tl/timelapse", json={"image_id": single}, headers=auth)
    assert r.status_code == 422 and "multi-page TIFF" in r.json()["detail"]

    # the track job segments with the registered time-lapse model
    r = client.post(
        "/v1/jobs",
        json={"kind": "track", "inputs": [image], "params": {"model": "tl@production"}},
        headers=auth,
    )
    assert r.status_code == 202, r.text
    done = finished_job(client, r.json()["id"], auth)
    assert done["state"] == "succeeded", done
    assert done["result"]["frames"] == 7
    assert done["result"]["tracks"] == body["tracking"]["tracks"]
