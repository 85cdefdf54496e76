"""Deleting an image takes what a study derived from it along: the analyses' overlay
(the image's own pixels with outlines), its per-image results and measurement rows, and
a pinned thread's region; the analysis keeps its other images, recounted."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from tests.integration.gateway.test_analyses import add_image, finished


def test_deleting_an_image_takes_its_analysis_results_overlay_and_thread_region(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    ana = people["ana"]
    a, _ = add_image(client, sid, ana, 1)
    b, _ = add_image(client, sid, ana, 2)
    run = client.post(
        f"/v1/studies/{sid}/analyses", json={"preset": "he-nuclei", "image_ids": [a, b]},
        headers=ana,
    )  # fmt: skip
    assert run.status_code == 201, run.text
    done = finished(client, run.headers["Location"], ana)
    assert done["status"] == "done", done
    links = done["images"][a]["links"]
    overlay_id = links["job"]["overlay"].split("/")[3]
    thread = client.post(
        f"/v1/studies/{sid}/threads",
        json={"title": "here", "image_id": a, "region": {"x": 1, "y": 2, "w": 30, "h": 40}},
        headers=ana,
    ).json()
    for url in (links["study"]["overlay"], links["study"]["summary"], links["job"]["objects"]):
        assert client.get(url, headers=ana).status_code == 200

    assert client.delete(f"/v1/images/{a}", headers=ana).status_code == 204

    for url in (links["study"]["overlay"], links["study"]["summary"], links["study"]["labels"]):
        assert client.get(url, headers=ana).status_code == 404, url
    # nor through the job that made them: the overlay image and the task's artifacts
    assert client.get(links["job"]["overlay"], headers=ana).status_code == 404
    assert client.get(links["job"]["objects"], headers=ana).status_code == 404
    assert client.get(f"/v1/images/{overlay_id}", headers=ana).status_code == 404

    got = client.get(f"/v1/studies/{sid}/export/measurements", headers=ana)
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert rows and {r["image_id"] for r in rows} == {b}
    assert len(rows) == done["images"][b]["object_count"]

    after = client.get(run.headers["Location"], headers=ana).json()
    assert after["image_ids"] == [b] and list(after["images"]) == [b]
    assert after["object_count"] == done["images"][b]["object_count"]
    assert client.get(after["images"][b]["links"]["study"]["overlay"], headers=ana).status_code == (
        200
    )

    pinned = client.get(f"/v1/studies/{sid}/threads/{thread['id']}", headers=ana).json()
    assert (pinned["image_id"], pinned["region"]) == (None, None)
