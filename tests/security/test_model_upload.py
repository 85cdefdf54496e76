"""Attacks through POST /v1/models/{name}/versions: a model that reads a file of the
server through external data, one that asks for foreign operators, and models that
cannot run with their input spec (issue 18, findings 1 and 15)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pixelmill.errors import CorruptImage
from pixelmill.ml import onnx_check, onnx_model
from pixelmill.ml.onnx_bounds import Bounds
from pixelmill.runtime.container import Container
from tests.ml_helpers import png
from tests.security import attacks

pytest.importorskip("onnx")

SECRET = b"signing_key: do-not-leak-0123456789abcdef\n"
SEGMENT_1 = json.dumps({"task": "segmentation", "channels": 1})


def register(
    client: TestClient, auth: dict[str, str], name: str, data: bytes, spec: str = SEGMENT_1
) -> object:
    return client.post(
        f"/v1/models/{name}/versions", params={"input_spec": spec}, content=data, headers=auth
    )


def assert_refused_and_nothing_kept(
    client: TestClient, auth: dict[str, str], container: Container, name: str, response: object
) -> dict:
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["type"].endswith("/invalid-model") and body["status"] == 422
    assert client.get(f"/v1/models/{name}", headers=auth).status_code == 404
    assert not [k for k in container.storage.list("models/")]
    assert client.get("/v1/models", headers=auth).status_code == 200  # still serving
    return body


@pytest.fixture
def secret_in_working_dir(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str]:
    """The server runs in its data dir (as under ``make up``), where a secret file is."""
    data_dir = Path(container.settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "pixelmill.yaml").write_bytes(SECRET)
    monkeypatch.chdir(data_dir)
    return data_dir, "pixelmill.yaml"


@pytest.mark.parametrize("where", ["initializer", "constant", "subgraph"])
def test_a_model_with_external_data_cannot_read_a_file_of_the_server(
    client: TestClient,
    auth: dict[str, str],
    container: Container,
    secret_in_working_dir: tuple[Path, str],
    where: str,
) -> None:
    data_dir, location = secret_in_working_dir
    evil = attacks.external_data_model(location, where=where)

    response = register(client, auth, "thief", evil)

    body = assert_refused_and_nothing_kept(client, auth, container, "thief", response)
    assert "external file" in body["detail"]
    text = response.text
    # neither the file's content nor any path of the server leaks into the answer
    assert "do-not-leak" not in text and str(data_dir) not in text and location not in text
    assert "/" not in body["detail"]


def test_a_model_whose_check_was_bypassed_still_finds_no_file(
    secret_in_working_dir: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: the session resolves external data in an empty private folder,
    so even a model the check missed reads nothing, and the error names no path."""
    data_dir, location = secret_in_working_dir
    monkeypatch.setattr(onnx_check, "refuse_unsafe", lambda data: None)

    with pytest.raises(CorruptImage) as refused:
        onnx_model.session(attacks.external_data_model(location, where="initializer"))

    assert str(data_dir) not in refused.value.detail
    assert onnx_check.empty_folder() not in refused.value.detail
    assert not list(Path(onnx_check.empty_folder()).iterdir())


@pytest.mark.parametrize(
    ("domain", "op"), [("evil.ops", "ReadFile"), ("com.microsoft", "FastGelu")]
)
def test_a_model_with_custom_operators_is_refused_before_it_loads(
    client: TestClient, auth: dict[str, str], container: Container, domain: str, op: str
) -> None:
    response = register(client, auth, "custom", attacks.custom_domain_model(domain, op))

    body = assert_refused_and_nothing_kept(client, auth, container, "custom", response)
    assert domain in body["detail"] and op in body["detail"]


def test_a_3_channel_model_cannot_be_registered_under_a_1_channel_spec(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    response = register(client, auth, "rgb", attacks.conv_model(3))

    body = assert_refused_and_nothing_kept(client, auth, container, "rgb", response)
    assert "3 channel(s)" in body["detail"] and "feeds 1" in body["detail"]
    # under the spec it was made for it registers and answers
    fits = register(client, auth, "rgb", attacks.conv_model(3), json.dumps({"channels": 3}))
    assert fits.status_code == 201, fits.text
    image = png(np.full((40, 40), 90, np.uint8))
    assert client.post("/v1/models/rgb:1/predict", content=image, headers=auth).status_code == 200


def test_a_model_whose_weights_want_3_channels_behind_a_dynamic_axis_is_refused(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    """The declared shape says nothing; the trial run at registration finds it out."""
    response = register(client, auth, "hidden", attacks.conv_model(3, dynamic_channels=True))

    body = assert_refused_and_nothing_kept(client, auth, container, "hidden", response)
    assert "fails on a 64x64 input" in body["detail"]


def test_a_model_that_fails_on_some_inputs_answers_4xx_not_500(
    client: TestClient, auth: dict[str, str]
) -> None:
    # given a model that runs on 64 x 64 inputs only
    assert register(client, auth, "fixed", attacks.fixed_size_model(64)).status_code == 201
    ok = png(np.full((64, 64), 90, np.uint8))
    assert client.post("/v1/models/fixed:1/predict", content=ok, headers=auth).status_code == 200

    # when it is asked about an image of another size
    other = png(np.full((40, 40), 90, np.uint8))
    response = client.post("/v1/models/fixed:1/predict", content=other, headers=auth)

    # then the client hears that the model cannot run on it, and the server goes on
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["type"].endswith("/invalid-model") and "cannot run" in body["detail"]
    assert "/onnxruntime_src" not in body["detail"]
    assert client.post("/v1/models/fixed:1/predict", content=ok, headers=auth).status_code == 200


def test_a_tiny_model_asking_for_a_huge_tensor_is_refused_before_it_runs(
    client: TestClient, auth: dict[str, str], container: Container
) -> None:
    # ml.max_tensor_bytes lowered to 32 MiB (as the container sets it from the settings):
    # a 4000x4000 float tensor (61 MiB) is over it; 60000x60000 would be 13 GiB
    container.models.bounds = Bounds(32 << 20, 64 << 20, 1024)
    response = register(client, auth, "bomb", attacks.constant_of_shape_model(4000))

    body = assert_refused_and_nothing_kept(client, auth, container, "bomb", response)
    assert "ConstantOfShape" in body["detail"] and "61 MB" in body["detail"]
    assert "ml.max_tensor_bytes" in body["detail"]
    # the shipped model (its largest tensor 128 MiB at 1024 px) fits the default bounds
    container.models.bounds = Bounds(1 << 30, 4 << 30, 1024)
    huge: Any = register(client, auth, "bomb", attacks.constant_of_shape_model(60_000))
    assert huge.status_code == 422 and "13,733 MB" in huge.json()["detail"]
