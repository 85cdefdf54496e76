"""The measurement export's µm columns follow the pixel size each row shows: the
study's, set (or changed) after the analysis measured the image without one."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from tests.integration.gateway.test_analyses import add_image, finished


def _rows(client: TestClient, sid: str, headers: dict[str, str]) -> list[dict[str, str]]:
    got = client.get(f"/v1/studies/{sid}/export/measurements", headers=headers)
    assert got.status_code == 200, got.text
    return list(csv.DictReader(io.StringIO(got.text)))


def test_export_computes_um_columns_with_the_pixel_size_it_shows(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    ana = people["ana"]
    a, _ = add_image(client, sid, ana, 1)  # a PNG: no pixel size of its own
    run = client.post(
        f"/v1/studies/{sid}/analyses", json={"preset": "he-nuclei", "image_ids": [a]},
        headers=ana,
    )  # fmt: skip
    assert finished(client, run.headers["Location"], ana)["status"] == "done"
    unset = _rows(client, sid, ana)
    assert unset and all(r["pixel_size_um"] == "" and r["area_um2"] == "" for r in unset)

    for size in (0.25, 1.0):
        r = client.patch(f"/v1/studies/{sid}/images/{a}", json={"pixel_size_um": size}, headers=ana)
        assert r.status_code == 200, r.text
        rows = _rows(client, sid, ana)
        assert len(rows) == len(unset)
        for row in rows:
            assert float(row["pixel_size_um"]) == size
            assert float(row["area_um2"]) == pytest.approx(float(row["area_px"]) * size**2)
            assert float(row["perimeter_um"]) == pytest.approx(float(row["perimeter_px"]) * size)
            assert float(row["major_axis_um"]) == pytest.approx(float(row["major_axis_px"]) * size)
