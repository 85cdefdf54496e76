"""Exports: per-object measurements of a study's finished analyses, joined with the
images' and patients' attributes, as CSV and Parquet."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.integration.gateway.test_analyses import add_image, finished
from tests.integration.gateway.workspace_helpers import user


def test_measurements_join_images_and_patients(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    ana = people["ana"]
    patient = client.post(
        f"/v1/studies/{sid}/patients",
        json={"sex": "female", "age_band": "60-69", "diagnosis": "carcinoma", "arm": "A"},
        headers=ana,
    ).json()
    a, _ = add_image(client, sid, ana, 1)
    b, _ = add_image(client, sid, ana, 2)
    r = client.patch(
        f"/v1/studies/{sid}/images/{a}",
        json={"patient_id": patient["id"], "stain": "H&E", "display_name": "case one",
              "magnification": 40, "pixel_size_um": 0.25},
        headers=ana,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    run = client.post(
        f"/v1/studies/{sid}/analyses",
        json={"preset": "he-nuclei", "image_ids": [a, b]},
        headers=ana,
    ).json()
    done = finished(client, f"/v1/studies/{sid}/analyses/{run['id']}", ana)
    counts = {i: done["images"][i]["object_count"] for i in (a, b)}

    got = client.get(f"/v1/studies/{sid}/export/measurements", headers=ana)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert len(rows) == sum(counts.values())
    mine = [r for r in rows if r["image_id"] == a]
    assert len(mine) == counts[a]
    first = mine[0]
    assert (first["patient_code"], first["sex"], first["age_band"], first["diagnosis"]) == (
        "S-0001",
        "female",
        "60-69",
        "carcinoma",
    )
    assert (first["arm"], first["stain"], first["display_name"]) == ("A", "H&E", "case one")
    assert float(first["pixel_size_um"]) == 0.25 and float(first["magnification"]) == 40
    assert first["analysis"] == "he-nuclei" and first["analysis_id"] == run["id"]
    assert "area_px" in first or any(k.startswith("area") for k in first)
    other = next(r for r in rows if r["image_id"] == b)
    assert other["patient_code"] == "" and other["sex"] == ""

    parquet = client.get(
        f"/v1/studies/{sid}/export/measurements", params={"format": "parquet"}, headers=ana
    )
    assert parquet.status_code == 200
    table = pq.read_table(io.BytesIO(parquet.content))
    feed = client.get(f"/v1/studies/{sid}/events", headers=people["olga"]).json()["items"]
    exports = [e["after"] for e in feed if e["action"] == "study.export"]
    assert exports[:2] == [
        {"what": "measurements", "format": "parquet"},
        {"what": "measurements", "format": "csv"},
    ]
    assert table.num_rows == len(rows)
    assert table.column("patient_code").to_pylist().count("S-0001") == counts[a]


def test_an_empty_study_exports_a_header_and_viewers_may_not_export(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    got = client.get(f"/v1/studies/{sid}/export/measurements", headers=people["ana"])
    assert got.status_code == 200
    assert got.text.splitlines()[0].startswith('"analysis_id","analysis","image_id"')
    assert len(got.text.strip().splitlines()) == 1
    assert (
        client.get(f"/v1/studies/{sid}/export/measurements", headers=people["vic"]).status_code
        == 403
    )
    assert (
        client.get(
            f"/v1/studies/{sid}/export/measurements",
            params={"format": "xlsx"},
            headers=people["ana"],
        ).status_code
        == 422
    )


def square(x: float, y: float, size: float = 10, **props: Any) -> dict[str, Any]:
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"objectType": "annotation", **props},
    }


def annotated_study(client: TestClient, sid: str, ana: dict[str, str]) -> tuple[str, str]:
    """Patients S-0001 and S-0003 (S-0002 deleted), two images, two annotations."""
    base = f"/v1/studies/{sid}/patients"
    first = client.post(base, json={"sex": "male", "tags": ["ffpe"]}, headers=ana).json()
    gone = client.post(base, json={}, headers=ana).json()
    client.delete(f"{base}/{gone['id']}", headers=ana)
    client.post(base, json={"age_band": "40-49"}, headers=ana)
    a, _ = add_image(client, sid, ana, 1)
    b, _ = add_image(client, sid, ana, 2)
    client.patch(
        f"/v1/studies/{sid}/images/{a}",
        json={"patient_id": first["id"], "stain": "H&E", "display_name": "case one"},
        headers=ana,
    )
    for x in (10, 40):
        r = client.post(
            f"/v1/studies/{sid}/images/{a}/annotations",
            json=square(x, 20, name=f"n{x}", classification={"name": "Tumor"}),
            headers=ana,
        )
        assert r.status_code == 201, r.text
    return a, b


def test_annotations_export_as_a_zip_of_geojson_files(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    annotated_study(client, sid, people["ana"])
    got = client.get(f"/v1/studies/{sid}/export/annotations", headers=people["ana"])
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(got.content)) as zf:
        assert len(zf.namelist()) == 2 and "case one.geojson" in zf.namelist()
        doc = json.loads(zf.read("case one.geojson"))
    assert doc["type"] == "FeatureCollection"
    assert sorted(f["properties"]["name"] for f in doc["features"]) == ["n10", "n40"]
    assert {f["properties"]["classification"]["name"] for f in doc["features"]} == {"Tumor"}


def test_a_study_archive_reimports_into_another_pixelmill(
    client: TestClient, sid: str, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    a, b = annotated_study(client, sid, people["ana"])
    archive = client.get(f"/v1/studies/{sid}/export/archive", headers=people["ana"])
    assert archive.status_code == 200, archive.text
    original_images = client.get(f"/v1/studies/{sid}/images", headers=people["ana"]).json()

    other = build_container(make_settings(tmp_path / "elsewhere"))
    try:
        with TestClient(create_app(other), raise_server_exceptions=False) as there:
            zoe = user(other, "zoe")
            r = there.post(
                "/v1/studies/import-archive",
                content=archive.content,
                headers={**zoe, "Content-Type": "application/zip"},
            )
            assert r.status_code == 201, r.text
            new = r.json()["id"]
            assert r.json()["name"] == "study" and r.json()["my_role"] == "owner"
            patients = there.get(f"/v1/studies/{new}/patients", headers=zoe).json()["items"]
            assert [(p["code"], p["sex"], p["age_band"], p["tags"]) for p in patients] == [
                ("S-0001", "male", None, ["ffpe"]),
                ("S-0003", None, "40-49", []),
            ]
            made = there.post(f"/v1/studies/{new}/patients", json={}, headers=zoe).json()
            assert made["code"] == "S-0004"
            images = there.get(f"/v1/studies/{new}/images", headers=zoe).json()["items"]
            by_name = {i["display_name"]: i for i in images}
            assert len(images) == len(original_images["items"]) == 2
            one = by_name["case one"]
            assert one["stain"] == "H&E" and one["patient_id"] == patients[0]["id"]
            owner = other.users.by_username("zoe").id
            assert other.images.get(one["image_id"]).owner_id == owner
            here = client.get(f"/v1/images/{a}/original", headers=people["ana"]).content
            assert there.get(f"/v1/images/{one['image_id']}/original", headers=zoe).content == here
            features = there.get(
                f"/v1/studies/{new}/images/{one['image_id']}/annotations", headers=zoe
            ).json()["features"]
            assert sorted(f["properties"]["name"] for f in features) == ["n10", "n40"]
            assert all(f["pixelmill"]["measurements"]["area_px"] == 100 for f in features)
    finally:
        other.close()
    assert b


def test_bad_archives_leave_no_study(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    a, _ = annotated_study(client, sid, people["ana"])
    good = client.get(f"/v1/studies/{sid}/export/archive", headers=people["ana"]).content
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(members["manifest.json"])
    sha = manifest["images"][0]["sha256"]

    def archive(**changes: bytes) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            for name, data in {**members, **changes}.items():
                zf.writestr(name, data)
        return buffer.getvalue()

    before = client.get("/v1/studies", headers=people["vic"]).json()["total"]
    bad = {
        "slip": archive(**{"../evil": b"x"}),
        "no manifest": archive(**{"manifest.json": b""}).replace(
            b"manifest.json", b"manifestXjson"
        ),
        "wrong bytes": archive(**{f"objects/{sha}": b"not the image"}),
        "bad manifest": archive(**{"manifest.json": b'{"format": "other"}'}),
    }
    for what, body in bad.items():
        r = client.post(
            "/v1/studies/import-archive",
            content=body,
            headers={**people["vic"], "Content-Type": "application/zip"},
        )
        assert r.status_code == 422, (what, r.text)
    assert client.get("/v1/studies", headers=people["vic"]).json()["total"] == before
    assert client.get(f"/v1/studies/{sid}/export/archive", headers=people["vic"]).status_code == 403
    assert a
