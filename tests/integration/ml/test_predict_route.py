"""The predict route answers as it did before its checks and prediction ran in one
worker-thread hop: the model check before the body's, the same JSON bytes FastAPI's
encoder gives, and a revoked grant refused by the very next prediction although
positive decisions are remembered."""

from __future__ import annotations

import json

from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container
from tests.helpers import make_key
from tests.integration.ml.test_serving_inline import (
    REF,
    nuclei_png,
    predict,
    register_private,
    shipped,  # noqa: F401  (the fixture)
    upload,
)


def test_the_json_answer_is_what_fastapis_encoder_gives(
    shipped: Container,  # noqa: F811
    client: TestClient,
    auth: dict[str, str],
) -> None:
    image_id = upload(client, auth, nuclei_png())
    r = predict(client, auth, image_id, measure="true")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    encoded = json.dumps(
        jsonable_encoder(r.json()), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    assert r.content == encoded.encode()
    assert r.json()["mask_image_id"] and r.json()["image_id"] == image_id


def test_a_stranger_learns_nothing_from_a_bad_body(
    shipped: Container,  # noqa: F811
    client: TestClient,
    auth: dict[str, str],
) -> None:
    # given a private model and a member without a level on it
    version = register_private(client, auth, 0.5)
    client.put("/v1/models/private/aliases/production", json={"version": version}, headers=auth)
    _, secret = make_key(shipped, "member", "write")
    member = {"Authorization": f"Bearer {secret}"}
    url = "/v1/models/private@production/predict"
    # then an invalid body is still a 404 for them (the model is checked first) ...
    assert client.post(url, json={"image_id": ""}, headers=member).status_code == 404
    # ... and a 422 naming the field for the owner
    r = client.post(url, json={"image_id": ""}, headers=auth)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    # and an image the member may not read is a 404 on the shipped model too
    image_id = upload(client, auth, nuclei_png())
    assert predict(client, member, image_id).status_code == 404


def test_a_revoked_grant_is_refused_by_the_next_prediction(
    shipped: Container,  # noqa: F811
    client: TestClient,
    auth: dict[str, str],
) -> None:
    # given a member granted read on a private model, who predicted with it (remembered)
    version = register_private(client, auth, 0.5)
    client.put("/v1/models/private/aliases/production", json={"version": version}, headers=auth)
    record, secret = make_key(shipped, "member", "write")
    member = {"Authorization": f"Bearer {secret}"}
    grant = f"/v1/models/private/permissions/{record.user_id}"
    assert client.put(grant, json={"level": "read"}, headers=auth).status_code == 200
    url = "/v1/models/private@production/predict?store=false"
    data = nuclei_png()
    assert client.post(url, content=data, headers=member).status_code == 200
    # when the grant is revoked
    assert client.delete(grant, headers=auth).status_code in (200, 204)
    # then the very next prediction is refused
    assert client.post(url, content=data, headers=member).status_code == 404
    # while the shipped model stays usable by all
    assert (
        client.post(
            f"/v1/models/{REF}/predict?store=false", content=data, headers=member
        ).status_code
        == 200
    )


def test_a_version_past_any_that_can_exist_is_a_422_everywhere_a_reference_is_taken(
    shipped: Container,  # noqa: F811
    client: TestClient,
    auth: dict[str, str],
) -> None:
    # a number past the 32-bit version column: it was a 500 (OverflowError in SQLite)
    image_id = upload(client, auth, nuclei_png())
    huge = "nuclei:99999999999999999999999"
    answers = {
        "predict": client.post(
            f"/v1/models/{huge}/predict", json={"image_id": image_id}, headers=auth
        ),
        "health": client.get(f"/v1/models/{huge}/health", headers=auth),
        "drift": client.get(f"/v1/models/{huge}/drift", headers=auth),
        "segmenter": client.post(
            "/v1/models/nuclei/predict",
            json={"image_id": image_id, "segmenter": huge},
            headers=auth,
        ),
    }
    for route, r in answers.items():
        assert r.status_code == 422, (route, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "2147483647" in r.json()["detail"], route
    # the largest version number is a reference, to a version that is not there
    r = client.get("/v1/models/nuclei:2147483647/health", headers=auth)
    assert r.status_code == 404 and "no version" in r.json()["detail"]
