"""Attack: learn about the server from its error bodies (issue 18, finding 10). Broken
images and models used to be answered with libvips' and ONNX Runtime's own words (file
paths, class names, source files); now each error says what is wrong in plain terms,
and the library's words go to the log under the request id the client is given."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container, build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.helpers import make_image, make_key
from tests.ml_helpers import png
from tests.security import attacks

#: words of the libraries and drivers behind the API
LIBRARY_WORDS = re.compile(r"vips|libpng|jpeg\b|onnxruntime|ONNXRuntimeError|\.cc\b|redis|Error\b")


def assert_says_nothing_of_the_server(resp: object, container: Container) -> dict:
    text = resp.text  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert resp.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    assert not LIBRARY_WORDS.search(body["detail"]), body["detail"]
    assert str(Path(container.settings.data_dir).resolve()) not in text
    assert "/" not in body["detail"], body["detail"]  # no path of any kind
    # the client gets a request id to quote; the same id answers in the header
    assert body["request_id"] == resp.headers["x-request-id"]  # type: ignore[attr-defined]
    return body


PNG = make_image(200, 200, fmt=".png")


@pytest.mark.parametrize(
    "upload",
    [
        PNG[: len(PNG) // 2],  # truncated data
        PNG[:16] + b"\xff" * 8 + PNG[24:],  # a header libpng refuses
        make_image(300, 300)[:2000],  # a truncated JPEG
    ],
    ids=["truncated-png", "bad-header", "truncated-jpeg"],
)
def test_a_broken_upload_is_refused_without_library_text(
    client: TestClient,
    auth: dict[str, str],
    container: Container,
    upload: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="pixelmill"):
        resp = client.post("/v1/images", content=upload, headers=auth)
    assert resp.status_code == 422, resp.text
    body = assert_says_nothing_of_the_server(resp, container)
    assert body["type"].endswith("/corrupt-image") and "corrupt or truncated" in body["detail"]
    # the operator finds libvips' own words in the log under that request id
    logged = [r.getMessage() for r in caplog.records if body["request_id"] in r.getMessage()]
    assert logged and any("vips" in line.lower() for line in logged), logged


@pytest.mark.parametrize("stored", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + bytes(300)])
def test_rendering_a_damaged_original_names_no_path_of_the_server(
    client: TestClient, auth: dict[str, str], container: Container, stored: bytes
) -> None:
    image = client.post("/v1/images", content=PNG, headers=auth).json()["id"]
    path = container.storage.local_path(container.images.get(image).storage_key)
    assert path is not None
    path.write_bytes(stored)  # damaged on disk, behind the server's back
    resp = client.get(f"/v1/images/{image}/render?w=50", headers=auth)
    assert resp.status_code == 422, resp.text
    assert_says_nothing_of_the_server(resp, container)
    assert path.name not in resp.text


def test_a_model_failing_on_an_input_names_no_runtime_internals(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    pytest.importorskip("onnx")
    spec = json.dumps({"task": "segmentation", "channels": 1})
    registered = client.post(
        "/v1/models/fixed/versions",
        params={"input_spec": spec},
        content=attacks.fixed_size_model(64),
        headers=auth,
    )
    assert registered.status_code == 201, registered.text
    other = png(np.full((40, 40), 90, np.uint8))
    resp = client.post("/v1/models/fixed:1/predict", content=other, headers=auth)
    assert resp.status_code == 422, resp.text
    body = assert_says_nothing_of_the_server(resp, container)
    assert "cannot run on this input" in body["detail"]


def test_a_model_that_cannot_run_at_registration_names_no_runtime_internals(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    pytest.importorskip("onnx")
    spec = json.dumps({"task": "segmentation", "channels": 1})
    resp = client.post(
        "/v1/models/hidden/versions",
        params={"input_spec": spec},
        content=attacks.conv_model(3, dynamic_channels=True),
        headers=auth,
    )
    assert resp.status_code == 422, resp.text
    body = assert_says_nothing_of_the_server(resp, container)
    assert "ONNX Runtime status" in body["detail"]  # the status name only


def test_an_unreachable_backend_is_named_but_not_its_address_or_driver_text(
    tmp_path: Path,
) -> None:
    storage = {
        "url": "s3://bucket",
        "s3_endpoint_url": "http://127.0.0.1:1",
        "s3_access_key": "key-id",
        "s3_secret_key": "secret",
    }
    container = build_container(make_settings(tmp_path, storage=storage))
    _, key = make_key(container, "admin", role="admin")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        resp = client.post("/v1/images", content=PNG, headers=auth)
    container.close()
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["type"].endswith("/backend-unavailable")
    assert "127.0.0.1" not in resp.text and ":1" not in body["detail"]
    assert body["request_id"] in body["detail"]  # what to quote to the operator


def test_a_client_request_id_is_kept_when_plain_and_replaced_when_not(
    client: TestClient,
) -> None:
    kept = client.get("/v1/images/missing", headers={"X-Request-ID": "trace-42.a"})
    assert kept.headers["x-request-id"] == "trace-42.a" == kept.json()["request_id"]
    # an id that could forge log lines is not taken over
    forged = client.get("/v1/images/missing", headers={"X-Request-ID": "x\tERROR fake"})
    assert forged.headers["x-request-id"] != "x\tERROR fake"
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["x-request-id"])


def test_a_bad_input_spec_is_answered_per_field_not_with_the_validator_text(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    pytest.importorskip("onnx")
    resp = client.post(
        "/v1/models/spec/versions",
        params={"input_spec": json.dumps({"task": "segmentation", "channels": "many"})},
        content=attacks.conv_model(1),
        headers=auth,
    )
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert "pydantic" not in resp.text and "https://" not in body["detail"] + str(body["errors"])
    assert [e["loc"] for e in body["errors"]] == ["input_spec.channels"]
