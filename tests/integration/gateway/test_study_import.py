"""Bulk import into a study: many files or zips become one job whose progress is the
import's; images land in the study with names and pixel sizes; slides are
de-identified; zip slip and zip bombs are refused before any job exists."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import tifffile
from fastapi.testclient import TestClient

from pixelmill.settings import Settings
from tests.conftest import make_settings
from tests.helpers import make_image
from tests.integration.gateway.workspace_helpers import user
from tests.jobs_helpers import finished_job
from tests.unit.imaging.slides.test_deidentify import PATIENT, SCAN_DATE, svs_like

MAX_UPLOAD = 400_000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, server={"max_upload_bytes": MAX_UPLOAD})


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def study_images(client: TestClient, sid: str, headers: dict[str, str]) -> dict[str, Any]:
    items = client.get(f"/v1/studies/{sid}/images", headers=headers).json()["items"]
    return {i["display_name"]: i for i in items}


def test_files_and_a_zip_import_as_one_job(
    client: TestClient, container: Any, sid: str, people: dict[str, dict[str, str]]
) -> None:
    archive = zipped(
        {
            "case-3/slide-a.png": make_image(60, 40, fmt=".png", seed=1),
            "case-3/slide-b.jpg": make_image(50, 30, seed=2),
            "notes.txt": b"not an image",
        }
    )
    files = [
        ("files", ("first.jpg", make_image(64, 48, seed=3), "image/jpeg")),
        ("files", ("../../second.png", make_image(32, 32, fmt=".png", seed=4), "image/png")),
        ("files", ("batch.zip", archive, "application/zip")),
    ]
    r = client.post(f"/v1/studies/{sid}/imports", files=files, headers=people["ana"])
    assert r.status_code == 202, r.text
    assert (r.json()["files"], r.json()["archives"]) == (3, 1)
    job = finished_job(client, r.json()["job_id"], people["ana"])
    assert job["state"] == "succeeded", job
    assert job["progress"]["fraction"] == 1.0
    result = job["result"]
    assert result["imported"] == 4
    events = client.get(f"/v1/jobs/{job['id']}/events", headers=people["ana"]).text
    progress = [line for line in events.splitlines() if line.startswith("event: progress")]
    assert progress and '"5/5: ' in events  # one step per file, the zip's members counted
    assert [f["file"] for f in result["failed"]] == ["notes.txt"]

    images = study_images(client, sid, people["vic"])
    assert sorted(images) == ["first", "second", "slide-a", "slide-b"]
    assert (images["slide-a"]["width"], images["slide-a"]["height"]) == (60, 40)
    owner = container.users.by_username("ana").id
    for item in images.values():
        assert container.images.get(item["image_id"]).owner_id == owner
        thumb = client.get(item["links"]["thumbnail"], headers=people["vic"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    # the spool is gone once the job is done
    assert list(container.storage.list("imports/")) == []


def test_a_slide_is_deidentified_with_its_pixel_size(
    client: TestClient, container: Any, sid: str, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    svs = tmp_path / "Jane Doe 2024-0117.svs"
    svs_like(svs)
    r = client.post(
        f"/v1/studies/{sid}/imports",
        content=zipped({"slides/case.svs": svs.read_bytes()}),
        headers={**people["ana"], "Content-Type": "application/zip"},
    )
    assert r.status_code == 202, r.text
    job = finished_job(client, r.json()["job_id"], people["ana"])
    assert job["state"] == "succeeded" and job["result"]["imported"] == 1, job
    outcome = job["result"]["images"][0]
    assert outcome["deidentified"]["dropped_images"] == ["label", "macro"]
    assert outcome["original_image_id"] is None  # the study keeps no originals by default

    item = study_images(client, sid, people["vic"])["case"]
    assert item["pixel_size_um"] == pytest.approx(0.499)
    stored = client.get(f"/v1/images/{item['image_id']}/original", headers=people["ana"]).content
    for secret in (PATIENT, SCAN_DATE, "SCANNER-PC"):
        assert secret.encode() not in stored
    with tifffile.TiffFile(io.BytesIO(stored)) as tif:
        assert not any("label" in p.description or "macro" in p.description for p in tif.pages)
    # nothing in storage holds the identifying original
    for key in container.storage.list(""):
        assert PATIENT.encode() not in container.storage.get(key), key


def test_keep_originals_keeps_them_unlinked(
    client: TestClient, sid: str, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    r = client.patch(
        f"/v1/studies/{sid}", json={"options": {"keep_originals": True}}, headers=people["olga"]
    )
    assert r.status_code == 200, r.text
    svs = tmp_path / "case.svs"
    svs_like(svs)
    files = [("files", ("case.svs", svs.read_bytes(), "image/tiff"))]
    r = client.post(f"/v1/studies/{sid}/imports", files=files, headers=people["ana"])
    job = finished_job(client, r.json()["job_id"], people["ana"])
    original = job["result"]["images"][0]["original_image_id"]
    assert original is not None
    kept = client.get(f"/v1/images/{original}/original", headers=people["ana"]).content
    assert PATIENT.encode() in kept
    assert list(study_images(client, sid, people["ana"])) == ["case"]
    assert client.get(f"/v1/images/{original}", headers=people["vic"]).status_code == 404


@pytest.mark.parametrize(
    ("members", "status"),
    [
        ({"../../etc/evil.png": make_image(8, 8, fmt=".png")}, 422),
        ({"/abs/evil.png": make_image(8, 8, fmt=".png")}, 422),
        ({"bomb.png": b"\0" * (MAX_UPLOAD + 1)}, 413),
    ],
)
def test_zip_slip_and_bombs_are_refused_before_any_job(
    client: TestClient,
    sid: str,
    people: dict[str, dict[str, str]],
    members: dict[str, bytes],
    status: int,
) -> None:
    files = [("files", ("bad.zip", zipped(members), "application/zip"))]
    r = client.post(f"/v1/studies/{sid}/imports", files=files, headers=people["ana"])
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/jobs", headers=people["ana"]).json()["items"] == []


def test_a_member_that_lies_about_its_size_fails_alone(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    good = make_image(20, 20, fmt=".png")
    data = bytearray(zipped({"liar.png": b"\0" * 50_000, "good.png": good}))
    # shrink liar.png's declared size in its local header and the central directory
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(sig)
        data[at + offset : at + offset + 4] = (100).to_bytes(4, "little")
    files = [("files", ("lies.zip", bytes(data), "application/zip"))]
    r = client.post(f"/v1/studies/{sid}/imports", files=files, headers=people["ana"])
    assert r.status_code == 202, r.text
    job = finished_job(client, r.json()["job_id"], people["ana"])
    assert job["result"]["imported"] == 1
    assert [f["file"] for f in job["result"]["failed"]] == ["liar.png"]


def test_who_may_import(
    client: TestClient, container: Any, sid: str, people: dict[str, dict[str, str]]
) -> None:
    files = [("files", ("a.jpg", make_image(16, 16), "image/jpeg"))]
    assert (
        client.post(f"/v1/studies/{sid}/imports", files=files, headers=people["vic"]).status_code
        == 403
    )
    stranger = user(container, "stranger")
    assert (
        client.post(f"/v1/studies/{sid}/imports", files=files, headers=stranger).status_code == 404
    )
    empty = client.post(
        f"/v1/studies/{sid}/imports",
        files=[("other", (None, "x"))],
        headers=people["ana"],
    )
    assert empty.status_code == 400
