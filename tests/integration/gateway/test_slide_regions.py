"""A region of a whole slide analysed through the job and analysis APIs: only the region
is read, the overlay is the region's size and says where it lies, and every object's
centroid and box (the objects table, promoted annotations) are in the slide's pixels."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvips
from fastapi.testclient import TestClient

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.integration.gateway.test_analyses import finished
from tests.integration.gateway.workspace_helpers import study, user
from tests.jobs_helpers import finished_job

LIMIT = 1_000_000  # render.max_pixels here: the 6 MP slide is a whole slide
PITCH, RADIUS = 40, 10  # a nucleus centred at (40 i + 20, 40 j + 20)
REGION = {"left": 1010, "top": 613, "width": 800, "height": 600}


def nuclei(width: int, height: int) -> np.ndarray:
    """Dark purple disks on pink (H&E-like), one per 40 x 40 cell, centred in it."""
    yy, xx = np.mgrid[0:height, 0:width]
    inside = (yy % PITCH - PITCH // 2) ** 2 + (xx % PITCH - PITCH // 2) ** 2 < RADIUS**2
    return np.where(inside[..., None], [95, 60, 150], [245, 180, 240]).astype(np.uint8)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("slide-regions")
    container = build_container(make_settings(tmp, render={"max_pixels": LIMIT}))
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        olga, vic = user(container, "olga"), user(container, "vic")
        path = tmp / "slide.tif"
        image = pyvips.Image.new_from_array(nuclei(3000, 2000), interpretation="srgb")
        image.tiffsave(str(path), tile=True, pyramid=True, compression="deflate")
        slide = client.post("/v1/images", content=path.read_bytes(), headers=olga)
        assert slide.status_code == 201, slide.text
        small_png = pyvips.Image.new_from_array(nuclei(400, 300), interpretation="srgb")
        small = client.post("/v1/images", content=small_png.write_to_buffer(".png"), headers=olga)
        yield {
            "client": client,
            "container": container,
            "olga": olga,
            "vic": vic,
            "slide": slide.json()["id"],
            "small": small.json()["id"],
        }
    container.close()


def run_job(world: dict[str, Any], image_id: str, region: dict[str, int] | None) -> dict[str, Any]:
    client, olga = world["client"], world["olga"]
    body: dict[str, Any] = {
        "inputs": [image_id],
        "pipeline": [{"op": "preset", "name": "he-nuclei"}],
    }
    if region is not None:
        body["region"] = region
    r = client.post("/v1/jobs", json=body, headers=olga)
    assert r.status_code == 202, r.text
    job = finished_job(client, r.json()["id"], olga, timeout=120)
    assert job["state"] == "succeeded", job
    return job


def objects_of(world: dict[str, Any], job: dict[str, Any]) -> list[dict[str, Any]]:
    r = world["client"].get(f"/v1/jobs/{job['id']}/results/objects", headers=world["olga"])
    assert r.status_code == 200, r.text
    return list(r.json())


def inner(rows: list[dict[str, Any]], box: dict[str, int]) -> list[dict[str, Any]]:
    """The objects not cut by the edge of ``box`` (whole nuclei)."""
    right, bottom = box["left"] + box["width"], box["top"] + box["height"]
    return [
        o
        for o in rows
        if o["bbox_min_col"] > box["left"]
        and o["bbox_min_row"] > box["top"]
        and o["bbox_max_col"] < right
        and o["bbox_max_row"] < bottom
    ]


def test_a_region_of_a_slide_is_analysed_and_its_objects_lie_where_they_are_on_the_slide(
    world: dict[str, Any],
) -> None:
    job = run_job(world, world["slide"], REGION)
    task = job["tasks"][0]
    assert task["result"]["region"] == REGION
    overlay = (
        world["client"].get(f"/v1/images/{task['result_image']}", headers=world["olga"]).json()
    )
    assert (overlay["width"], overlay["height"]) == (800, 600)

    whole = inner(objects_of(world, job), REGION)
    found = {(round(o["centroid_col"]), round(o["centroid_row"])) for o in whole}
    for o in whole:  # centred on the slide's 40-px grid, not the region's
        assert abs(o["centroid_col"] % PITCH - 20) < 1, o
        assert abs(o["centroid_row"] % PITCH - 20) < 1, o
    # every nucleus well inside the region is found where the slide has it
    left, top = REGION["left"], REGION["top"]
    right, bottom = left + REGION["width"], top + REGION["height"]
    well_inside = {
        (x, y)
        for x in range(20, 3000, PITCH)
        for y in range(20, 2000, PITCH)
        if left + 2 * RADIUS <= x <= right - 2 * RADIUS
        and top + 2 * RADIUS <= y <= bottom - 2 * RADIUS
    }
    assert len(well_inside) == 19 * 14
    assert well_inside <= found


def test_a_region_on_a_small_image_finds_the_same_objects_as_the_whole_image(
    world: dict[str, Any],
) -> None:
    box = {"left": 105, "top": 47, "width": 200, "height": 150}
    full = inner(objects_of(world, run_job(world, world["small"], None)), box)
    part = inner(objects_of(world, run_job(world, world["small"], box)), box)
    key = ("centroid_row", "centroid_col", "bbox_min_row", "bbox_max_col", "area_px")
    assert len(part) == len(full) > 10
    assert sorted(tuple(round(o[k], 3) for k in key) for o in part) == sorted(
        tuple(round(o[k], 3) for k in key) for o in full
    )


@pytest.mark.parametrize(
    ("region", "words"),
    [
        ({"left": 2500, "top": 0, "width": 800, "height": 600}, "past the image"),
        ({"left": 0, "top": 0, "width": 2000, "height": 1000}, "at most 1000000"),
    ],
)
def test_a_region_outside_the_slide_or_over_the_pixel_limit_is_refused_by_name(
    world: dict[str, Any], region: dict[str, int], words: str
) -> None:
    client, olga = world["client"], world["olga"]
    before = len(client.get("/v1/jobs", headers=olga).json()["items"])
    body = {
        "inputs": [world["slide"]],
        "pipeline": [{"op": "preset", "name": "he-nuclei"}],
        "region": region,
    }
    r = client.post("/v1/jobs", json=body, headers=olga)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == "region" and words in r.json()["detail"]
    body["region"] = {"left": -1, "top": 0, "width": 10, "height": 10}
    bad = client.post("/v1/jobs", json=body, headers=olga)
    assert bad.status_code == 422
    assert [e["loc"] for e in bad.json()["errors"]] == ["params.region.left"]
    assert len(client.get("/v1/jobs", headers=olga).json()["items"]) == before


def test_a_study_analysis_of_a_slide_region_places_its_overlay_objects_and_promotions(
    world: dict[str, Any],
) -> None:
    client, container, olga, vic = world["client"], world["container"], world["olga"], world["vic"]
    sid = study(client, olga, {"vic": "viewer"}, container=container)
    slide = world["slide"]
    assert client.post(f"/v1/studies/{sid}/images", json={"image_id": slide}, headers=olga)
    outside = {**REGION, "left": 2900}
    refused = client.post(
        f"/v1/studies/{sid}/analyses",
        json={"preset": "he-nuclei", "image_ids": [slide], "region": outside},
        headers=olga,
    )
    assert refused.status_code == 422 and refused.json()["field"] == "region"
    whole = client.post(
        f"/v1/studies/{sid}/analyses",
        json={"preset": "he-nuclei", "image_ids": [slide]},
        headers=olga,
    )
    assert whole.status_code == 413 and whole.json()["slides"] == [slide], whole.text
    assert client.get(f"/v1/studies/{sid}/analyses", headers=olga).json()["total"] == 0

    r = client.post(
        f"/v1/studies/{sid}/analyses",
        json={"preset": "he-nuclei", "image_ids": [slide], "region": REGION},
        headers=olga,
    )
    assert r.status_code == 201, r.text
    assert r.json()["region"] == REGION
    done = finished(client, r.headers["Location"], vic)
    assert done["status"] == "done" and done["region"] == REGION
    links = done["images"][slide]["links"]["study"]
    table = client.get(links["objects"], params={"format": "csv"}, headers=vic)
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert len(rows) == done["images"][slide]["object_count"] > 19 * 15
    cols = [float(row["centroid_col"]) for row in rows]
    assert REGION["left"] <= min(cols) and max(cols) <= REGION["left"] + REGION["width"]
    overlay = client.get(links["overlay"], headers=vic)
    assert pyvips.Image.new_from_buffer(overlay.content, "").width == REGION["width"]

    as_json = client.get(links["objects"], params={"format": "json"}, headers=vic).json()
    target = inner(as_json, REGION)[0]
    promoted = client.post(
        f"/v1/studies/{sid}/analyses/{done['id']}/promote",
        json={"image_id": slide, "object_ids": [int(target["label"])]},
        headers=olga,
    )
    assert promoted.status_code == 201, promoted.text
    aid = promoted.json()["annotation_ids"][0]
    feature = client.get(f"/v1/studies/{sid}/images/{slide}/annotations/{aid}", headers=vic).json()
    x0, y0, x1, y1 = feature["pixelmill"]["bbox"]
    assert (x0 + x1) / 2 == pytest.approx(target["centroid_col"], abs=1)
    assert (y0 + y1) / 2 == pytest.approx(target["centroid_row"], abs=1)


def test_a_region_of_a_slide_on_object_storage_is_read_from_a_local_copy(
    tmp_path: Path,
) -> None:
    # given a slide kept in an object store with no local paths (memory, as S3)
    settings = make_settings(tmp_path, render={"max_pixels": LIMIT}, storage={"url": "memory://"})
    container = build_container(settings)
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        olga = user(container, "olga")
        path = tmp_path / "slide.tif"
        image = pyvips.Image.new_from_array(nuclei(3000, 2000), interpretation="srgb")
        image.tiffsave(str(path), tile=True, pyramid=True, compression="deflate")
        slide = client.post("/v1/images", content=path.read_bytes(), headers=olga).json()
        # when a region of it is analysed
        r = client.post(
            "/v1/jobs",
            json={"inputs": [slide["id"]], "pipeline": [{"op": "grayscale"}], "region": REGION},
            headers=olga,
        )
        job = finished_job(client, r.json()["id"], olga, timeout=60)
    container.close()
    # then the task read the slide's one local copy and made the region's image
    assert job["state"] == "succeeded", job
    assert [p.name for p in (settings.data_dir / "slide-copies").iterdir()] == [slide["sha256"]]


def test_a_region_is_of_the_upright_image(world: dict[str, Any]) -> None:
    # given a JPEG stored 300 wide and 200 high, whose EXIF turns it upright (200 x 300)
    client, olga = world["client"], world["olga"]
    stored = pyvips.Image.new_from_array(nuclei(300, 200), interpretation="srgb").copy()
    stored.set_type(pyvips.GValue.gint_type, "orientation", 6)
    image_id = client.post("/v1/images", content=stored.write_to_buffer(".jpg"), headers=olga)
    image_id = image_id.json()["id"]
    pipeline = [{"op": "grayscale"}]
    # a region as tall as the upright image is read; one as wide as the stored one is not
    tall = {"left": 0, "top": 100, "width": 200, "height": 200}
    r = client.post(
        "/v1/jobs", json={"inputs": [image_id], "pipeline": pipeline, "region": tall}, headers=olga
    )
    assert r.status_code == 202, r.text
    job = finished_job(client, r.json()["id"], olga, timeout=60)
    assert job["state"] == "succeeded", job
    wide = {"left": 0, "top": 0, "width": 300, "height": 100}
    r = client.post(
        "/v1/jobs", json={"inputs": [image_id], "pipeline": pipeline, "region": wide}, headers=olga
    )
    assert r.status_code == 422 and r.json()["field"] == "region"
