"""Exports: per-object measurements of a study's finished analyses, joined with the
images' and patients' attributes, as CSV and Parquet."""

from __future__ import annotations

import csv
import io
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.integration.gateway.test_analyses import add_image, finished
from tests.integration.gateway.workspace_helpers import study, user


@pytest.fixture
def people(container: Any) -> dict[str, dict[str, str]]:
    return {name: user(container, name) for name in ("olga", "ana", "vic")}


@pytest.fixture
def sid(client: TestClient, container: Any, people: dict[str, dict[str, str]]) -> str:
    return study(client, people["olga"], {"ana": "analyst", "vic": "viewer"}, container=container)


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
