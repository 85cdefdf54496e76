"""Analyses: a preset run on a study's images as one job, its per-image summary and
read-only results reachable by every member, and the checks on what may be run where."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson
import pytest
import pyvips
from fastapi.testclient import TestClient

from tests.integration.gateway.test_study_stream import frames
from tests.integration.gateway.workspace_helpers import study, user
from tests.jobs_helpers import wait_for
from tests.unit.imaging.analysis import synthetic as syn


def he_image(seed: int) -> tuple[bytes, int]:
    """An H&E-like PNG of nuclei (hematoxylin blobs) and how many nuclei it has."""
    scene = syn.blobs((160, 200), seed=seed)
    rgb = syn.brightfield(
        {
            "hematoxylin": np.where(scene.truth > 0, 0.6, 0.0),
            "eosin": np.full(scene.truth.shape, 0.1),
        }
    )
    body = pyvips.Image.new_from_array(rgb, interpretation="srgb").write_to_buffer(".png")
    return bytes(body), scene.count


def finished(client: TestClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(600):
        body: dict[str, Any] = client.get(url, headers=headers).json()
        if body["status"] != "running":
            return body
        time.sleep(0.05)
    raise AssertionError(f"the analysis did not finish: {body}")


def add_image(client: TestClient, sid: str, headers: dict[str, str], seed: int) -> tuple[str, int]:
    body, count = he_image(seed)
    image = client.post("/v1/images", content=body, headers=headers).json()["id"]
    r = client.post(f"/v1/studies/{sid}/images", json={"image_id": image}, headers=headers)
    assert r.status_code == 201, r.text
    return str(image), count


def test_a_preset_analysis_runs_one_job_and_members_read_its_results(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    (a, count_a), (b, count_b) = (add_image(client, sid, people["ana"], s) for s in (1, 2))
    r = client.post(
        f"/v1/studies/{sid}/analyses",
        json={"preset": "he-nuclei", "image_ids": [a, b]},
        headers=people["ana"],
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "running" and r.json()["kind"] == "preset"
    job = client.get(f"/v1/jobs/{r.json()['job_id']}", headers=people["ana"]).json()
    assert job["owner"] and sorted(job["inputs"]) == sorted([a, b])

    done = finished(client, r.headers["Location"], people["vic"])
    assert done["status"] == "done", done
    for image_id, truth in ((a, count_a), (b, count_b)):
        entry = done["images"][image_id]
        assert entry["state"] == "succeeded"
        assert abs(entry["object_count"] - truth) <= max(2, truth // 10)
    assert done["object_count"] == sum(done["images"][i]["object_count"] for i in (a, b))

    # a viewer reads the results through the study; the job itself stays its owner's
    links = done["images"][a]["links"]
    csv = client.get(links["study"]["objects"], params={"format": "csv"}, headers=people["vic"])
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert len(csv.text.strip().splitlines()) == done["images"][a]["object_count"] + 1
    overlay = client.get(links["study"]["overlay"], headers=people["vic"])
    assert overlay.status_code == 200
    assert pyvips.Image.new_from_buffer(overlay.content, "").width == 200
    labels = client.get(links["study"]["labels"], headers=people["vic"])
    assert labels.status_code == 200 and labels.content[:2] in (b"II", b"MM")
    assert client.get(links["job"]["objects"], headers=people["ana"]).status_code == 200
    assert client.get(f"/v1/jobs/{done['job_id']}", headers=people["vic"]).status_code == 404

    images = client.get(f"/v1/studies/{sid}/images", headers=people["vic"]).json()["items"]
    assert {i["image_id"]: i["analysis_status"] for i in images} == {a: "done", b: "done"}
    listed = client.get(f"/v1/studies/{sid}/analyses", headers=people["vic"]).json()
    assert listed["total"] == 1 and listed["items"][0]["status"] == "done"
    counts = client.get(f"/v1/studies/{sid}", headers=people["vic"]).json()["counts"]
    assert counts["analyses"] == 1

    # once the image leaves the study, its members no longer see its pixels or its
    # objects through the analysis; its owner still does
    gone = client.delete(f"/v1/studies/{sid}/images/{a}", headers=people["olga"])
    assert gone.status_code == 204, gone.text
    for name in ("overlay", "labels", "objects"):
        assert client.get(links["study"][name], headers=people["vic"]).status_code == 404
    assert client.get(links["study"]["overlay"], headers=people["ana"]).status_code == 200
    other = done["images"][b]["links"]["study"]["overlay"]
    assert client.get(other, headers=people["vic"]).status_code == 200


def test_bad_requests_create_neither_job_nor_analysis(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    image, _ = add_image(client, sid, people["ana"], 3)
    elsewhere = client.post("/v1/images", content=he_image(4)[0], headers=people["ana"]).json()[
        "id"
    ]
    base = f"/v1/studies/{sid}/analyses"
    for body in (
        {"preset": "no-such-preset", "image_ids": [image]},
        {"preset": "he-nuclei", "image_ids": [elsewhere]},
        {"preset": "he-nuclei", "model": "nuclei@production", "image_ids": [image]},
        {"image_ids": [image]},
        {"preset": "he-nuclei", "image_ids": []},
        {"preset": "he-nuclei", "params": {"steps": []}, "image_ids": [image]},
        {"preset": "he-nuclei", "image_ids": [image], "owner": "x"},
    ):
        r = client.post(base, json=body, headers=people["ana"])
        assert r.status_code == 422, (body, r.text)
    assert client.get(base, headers=people["ana"]).json()["total"] == 0
    assert client.get("/v1/jobs", headers=people["ana"]).json()["items"] == []


def test_who_may_run_and_read(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    image, _ = add_image(client, sid, people["ana"], 5)
    base = f"/v1/studies/{sid}/analyses"
    body = {"preset": "he-nuclei", "image_ids": [image]}
    assert client.post(base, json=body, headers=people["vic"]).status_code == 403
    assert client.post(base, json=body, headers=people["nobody"]).status_code == 404
    made = client.post(base, json=body, headers=people["ana"]).json()
    assert client.get(f"{base}/{made['id']}", headers=people["nobody"]).status_code == 404
    finished(client, f"{base}/{made['id']}", people["ana"])
    # output is read-only: there is no way to change or delete an analysis
    assert client.patch(f"{base}/{made['id']}", json={}, headers=people["olga"]).status_code == 405
    assert client.delete(f"{base}/{made['id']}", headers=people["olga"]).status_code == 405


def test_promote_copies_objects_into_editable_annotations(
    client: TestClient, container: Any, sid: str, people: dict[str, dict[str, str]]
) -> None:
    annie = user(container, "annie")
    r = client.put(
        f"/v1/studies/{sid}/members/{container.users.by_username('annie').id}",
        json={"role": "annotator"},
        headers=people["olga"],
    )
    assert r.status_code == 200
    image, _ = add_image(client, sid, people["ana"], 6)
    base = f"/v1/studies/{sid}/analyses"
    made = client.post(
        base, json={"preset": "he-nuclei", "image_ids": [image]}, headers=people["ana"]
    )
    done = finished(client, f"{base}/{made.json()['id']}", annie)
    objects = client.get(done["images"][image]["links"]["study"]["objects"], headers=annie).json()
    by_label = {int(o["label"]): o for o in objects}
    chosen = sorted(by_label)[:2]

    url = f"{base}/{done['id']}/promote"
    r = client.post(url, json={"image_id": image, "object_ids": chosen}, headers=annie)
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 2
    listed = client.get(f"/v1/studies/{sid}/images/{image}/annotations", headers=annie).json()
    features = {f["properties"]["object_id"]: f for f in listed["features"]}
    assert sorted(features) == chosen
    for label in chosen:
        meta = features[label]["pixelmill"]
        assert (meta["source"], meta["analysis_id"]) == ("import", done["id"])
        area_px = next(v for k, v in meta["measurements"].items() if "area" in k.lower())
        assert area_px == pytest.approx(by_label[label]["area_px"], rel=0.01)
    # the copy is editable (the analysis output itself stays as it was)
    one = features[chosen[0]]["pixelmill"]["id"]
    got = client.get(f"/v1/studies/{sid}/images/{image}/annotations/{one}", headers=annie)
    changed = client.patch(
        f"/v1/studies/{sid}/images/{image}/annotations/{one}",
        json={"properties": {"name": "tumour nucleus"}},
        headers={**annie, "If-Match": got.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text

    every = client.post(url, json={"image_id": image, "all": True}, headers=annie)
    assert (
        every.status_code == 201
        and every.json()["created"] == done["images"][image]["object_count"]
    )
    assert (
        client.post(
            url, json={"image_id": image, "object_ids": [999_999]}, headers=annie
        ).status_code
        == 422
    )
    assert client.post(url, json={"image_id": image}, headers=annie).status_code == 422
    assert (
        client.post(url, json={"image_id": image, "all": True}, headers=people["vic"]).status_code
        == 403
    )
    assert (
        client.post(
            url, json={"image_id": image, "all": True}, headers=people["nobody"]
        ).status_code
        == 404
    )


def test_a_model_analysis_segments_with_the_registered_model(
    client: TestClient, container: Any, sid: str, people: dict[str, dict[str, str]]
) -> None:
    container.models.ensure_default()  # the shipped nuclei@production
    scene = syn.blobs((128, 128), seed=7)
    grey = (scene.image * 255).astype(np.uint8)
    body = pyvips.Image.new_from_array(grey).copy(interpretation="b-w").write_to_buffer(".png")
    image = client.post("/v1/images", content=bytes(body), headers=people["ana"]).json()["id"]
    client.post(f"/v1/studies/{sid}/images", json={"image_id": image}, headers=people["ana"])
    base = f"/v1/studies/{sid}/analyses"
    r = client.post(
        base,
        json={"model": "nuclei@production", "params": {"min_area": 10}, "image_ids": [image]},
        headers=people["ana"],
    )
    assert r.status_code == 201, r.text
    done = finished(client, f"{base}/{r.json()['id']}", people["ana"])
    assert done["status"] == "done" and done["kind"] == "model", done
    assert done["target"] == "nuclei@production"
    count = done["images"][image]["object_count"]
    assert abs(count - scene.count) <= max(2, scene.count // 5), (count, scene.count)
    bad = client.post(
        base,
        json={"model": "nuclei@production", "params": {"steps": 1}, "image_ids": [image]},
        headers=people["ana"],
    )
    assert bad.status_code == 422


def test_an_analysis_is_not_reachable_through_another_study(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    image, _ = add_image(client, sid, people["ana"], 8)
    made = client.post(
        f"/v1/studies/{sid}/analyses",
        json={"preset": "he-nuclei", "image_ids": [image]},
        headers=people["ana"],
    ).json()
    done = finished(client, f"/v1/studies/{sid}/analyses/{made['id']}", people["ana"])
    own = study(client, people["nobody"])  # the intruder owns a study of their own
    base = f"/v1/studies/{own}/analyses/{made['id']}"
    for r in (
        client.get(base, headers=people["nobody"]),
        client.get(f"{base}/images/{image}/results/objects", headers=people["nobody"]),
        client.get(f"{base}/images/{image}/overlay", headers=people["nobody"]),
        client.post(
            f"{base}/promote", json={"image_id": image, "all": True}, headers=people["nobody"]
        ),
    ):
        assert r.status_code == 404, r.text
    assert done["status"] == "done"


def test_a_watched_study_streams_the_analysis_end_and_its_images_follow(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    # given an analysis whose job finished while nobody read the analysis
    (a, _), (b, _) = (add_image(client, sid, people["ana"], s) for s in (3, 4))
    run = client.post(
        f"/v1/studies/{sid}/analyses",
        json={"preset": "he-nuclei", "image_ids": [a, b]},
        headers=people["ana"],
    ).json()
    deadline = time.monotonic() + 60
    while client.get(f"/v1/jobs/{run['job_id']}", headers=people["ana"]).json()["state"] != (
        "succeeded"
    ):
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.1)
    # when a viewer watches the study's live stream
    seen: list[str] = []
    with client.stream(
        "GET", f"/v1/studies/{sid}/events/stream?after=0", headers=people["vic"]
    ) as stream:
        for line in stream.iter_lines():
            assert time.monotonic() < deadline + 30, f"no analysis.done in {seen}"
            if line.startswith("data: "):
                seen.append(str(orjson.loads(line[6:]).get("action")))
                if seen[-1] == "analysis.done":
                    break
    # then it saw the analysis finish (progress events come while it runs), and the
    # images' status followed without anyone reading the analysis
    assert seen[-1] == "analysis.done"
    images = client.get(f"/v1/studies/{sid}/images", headers=people["vic"]).json()["items"]
    assert {i["image_id"]: i["analysis_status"] for i in images} == {a: "done", b: "done"}


def test_an_analysis_is_brought_up_to_date_when_its_job_ends_without_any_reader(
    client: TestClient, container: Any, sid: str, people: dict[str, dict[str, str]]
) -> None:
    # given an analysis running on two images, and nobody reading or watching it
    (a, _), (b, _) = (add_image(client, sid, people["ana"], s) for s in (5, 6))
    before = container.events.last_id()
    run = client.post(
        f"/v1/studies/{sid}/analyses",
        json={"preset": "he-nuclei", "image_ids": [a, b]},
        headers=people["ana"],
    ).json()
    # when its job ends, the analyses table says so: read straight from the repository
    # (no refresh), it is done with each image's object count
    record = wait_for(
        lambda: (r := container.analyses.repo.get(sid, run["id"])).finished and r, timeout=60
    )
    assert record.status == "done", record.summary
    assert {i: e["state"] for i, e in record.summary["images"].items()} == {
        a: "succeeded",
        b: "succeeded",
    }
    assert all(e["object_count"] > 0 for e in record.summary["images"].values())
    # and the study's event log, which its live stream replays, holds the end
    with client.stream(
        "GET", f"/v1/studies/{sid}/events/stream?after={before}", headers=people["vic"]
    ) as stream:
        shown = next(
            f
            for f in frames(stream.iter_lines())
            if f.get("data", {}).get("action") == "analysis.done"
        )
    assert shown["data"]["target_id"] == run["id"]
    assert shown["data"]["after"]["images"] == {a: "done", b: "done"}
