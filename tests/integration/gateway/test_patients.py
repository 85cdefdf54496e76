"""Patients of a study: pseudonymous codes, the attribute allow-list, external ids kept
only as keyed HMACs, image links that survive a patient's deletion, and who may do what."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import make_image
from tests.integration.gateway.workspace_helpers import study

SECRET_ID = "MRN-77341-ZEBRA"


def test_patients_get_consecutive_codes_and_allowed_attributes(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    base = f"/v1/studies/{sid}/patients"
    first = client.post(base, json={"sex": "female", "age_band": "60-69"}, headers=people["ana"])
    second = client.post(
        base,
        json={"diagnosis": "adenocarcinoma", "group": "control", "tags": ["ffpe", "ffpe", "tma"]},
        headers=people["ana"],
    )
    assert first.status_code == second.status_code == 201, first.text + second.text
    assert [first.json()["code"], second.json()["code"]] == ["S-0001", "S-0002"]
    assert second.json()["arm"] == "control"
    assert second.json()["tags"] == ["ffpe", "tma"]
    listed = client.get(base, headers=people["vic"]).json()
    assert listed["total"] == 2
    assert [p["code"] for p in listed["items"]] == ["S-0001", "S-0002"]
    assert (
        client.get(f"/v1/studies/{sid}", headers=people["olga"]).json()["counts"]["patients"] == 2
    )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Jane Doe"},
        {"date_of_birth": "1960-01-01"},
        {"sex": "f"},
        {"age_band": "63"},
        {"diagnosis": "x" * 201},
        {"tags": [f"t{i}" for i in range(21)]},
        {"tags": ["a" * 41]},
    ],
)
def test_anything_off_the_allow_list_is_a_422(
    client: TestClient, sid: str, people: dict[str, dict[str, str]], body: dict[str, Any]
) -> None:
    r = client.post(f"/v1/studies/{sid}/patients", json=body, headers=people["ana"])
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"/v1/studies/{sid}/patients", headers=people["ana"]).json()["total"] == 0


def test_concurrent_creates_never_share_a_code(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    def create(_: int) -> str:
        r = client.post(f"/v1/studies/{sid}/patients", json={}, headers=people["ana"])
        assert r.status_code == 201, r.text
        return str(r.json()["code"])

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(create, range(24)))
    assert sorted(codes) == [f"S-{n:04d}" for n in range(1, 25)]


def test_external_id_is_found_by_hmac_and_never_stored_in_plaintext(
    client: TestClient, container: Any, sid: str, people: dict[str, dict[str, str]]
) -> None:
    base = f"/v1/studies/{sid}/patients"
    made = client.post(base, json={"external_id": SECRET_ID, "sex": "male"}, headers=people["ana"])
    assert made.status_code == 201, made.text
    assert made.json()["has_external_id"] is True
    assert SECRET_ID not in made.text
    found = client.post(
        f"{base}/lookup", json={"external_id": f" {SECRET_ID} "}, headers=people["vic"]
    )
    assert found.status_code == 200 and found.json()["code"] == "S-0001"
    assert (
        client.post(
            f"{base}/lookup", json={"external_id": "MRN-0"}, headers=people["vic"]
        ).status_code
        == 404
    )
    again = client.post(base, json={"external_id": SECRET_ID}, headers=people["ana"])
    assert again.status_code == 409
    events = client.get(f"/v1/studies/{sid}/events", headers=people["olga"]).text
    assert SECRET_ID not in events
    container.db.dispose()  # checkpoint nothing away: read the file and its WAL as they are
    data_dir = Path(container.settings.data_dir)
    stored = b"".join(p.read_bytes() for p in data_dir.glob("pixelmill.db*"))
    assert stored, "the SQLite database file exists"
    assert SECRET_ID.encode() not in stored
    assert container.external_ids.digest(SECRET_ID).encode() in stored


def test_patch_changes_and_clears_attributes(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    base = f"/v1/studies/{sid}/patients"
    pid = client.post(
        base, json={"sex": "female", "tags": ["a"], "external_id": "X1"}, headers=people["ana"]
    ).json()["id"]
    r = client.patch(
        f"{base}/{pid}",
        json={"age_band": "90+", "tags": None, "external_id": None},
        headers=people["ana"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["sex"], body["age_band"], body["tags"], body["has_external_id"]) == (
        "female",
        "90+",
        [],
        False,
    )
    assert (
        client.patch(f"{base}/{pid}", json={"name": "x"}, headers=people["ana"]).status_code == 422
    )
    assert client.patch(f"{base}/{pid}", json={}, headers=people["ana"]).status_code == 422


def test_deleting_a_patient_unlinks_their_images(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    base = f"/v1/studies/{sid}/patients"
    pid = client.post(base, json={}, headers=people["ana"]).json()["id"]
    image = client.post(
        "/v1/images", content=make_image(64, 48), headers={**people["ana"], "X-Filename": "a.jpg"}
    ).json()["id"]
    r = client.post(
        f"/v1/studies/{sid}/images",
        json={"image_id": image, "patient_id": pid},
        headers=people["ana"],
    )
    assert r.status_code == 201, r.text
    assert client.get(f"{base}/{pid}", headers=people["vic"]).json()["image_count"] == 1
    assert client.delete(f"{base}/{pid}", headers=people["ana"]).status_code == 204
    assert client.get(f"{base}/{pid}", headers=people["ana"]).status_code == 404
    images = client.get(f"/v1/studies/{sid}/images", headers=people["vic"]).json()["items"]
    assert [(i["image_id"], i["patient_id"]) for i in images] == [(image, None)]


def test_roles_decide_and_outsiders_see_nothing(
    client: TestClient, sid: str, people: dict[str, dict[str, str]]
) -> None:
    base = f"/v1/studies/{sid}/patients"
    pid = client.post(base, json={}, headers=people["ana"]).json()["id"]
    assert client.post(base, json={}, headers=people["vic"]).status_code == 403
    assert client.delete(f"{base}/{pid}", headers=people["vic"]).status_code == 403
    assert client.get(f"{base}/{pid}", headers=people["vic"]).status_code == 200
    for call in (
        lambda: client.get(base, headers=people["nobody"]),
        lambda: client.get(f"{base}/{pid}", headers=people["nobody"]),
        lambda: client.patch(f"{base}/{pid}", json={"sex": "male"}, headers=people["nobody"]),
    ):
        assert call().status_code == 404
    # a patient of another study is not reachable through this one
    other = study(client, people["nobody"])
    assert (
        client.get(f"/v1/studies/{other}/patients/{pid}", headers=people["nobody"]).status_code
        == 404
    )
