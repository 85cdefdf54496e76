"""Automatic model rollback: a newly promoted version whose predictions fail is moved
off ``production`` by itself, inside its watch window, with the reason in the audit,
an event in the events table and a metric."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from pixelmill.runtime.container import Container, build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.services.inference.rollback import ROLLBACK_ACTOR
from pixelmill.settings_healing import HealingSettings, RollbackSettings
from tests.conftest import make_settings
from tests.helpers import make_key
from tests.ml_helpers import png
from tests.security import attacks

onnx = pytest.importorskip("onnx")
SPEC = json.dumps({"task": "segmentation", "channels": 1, "multiple": 8})


def fails_off_64px() -> bytes:
    """A model that passes registration (its 64x64 trial run works) but fails on every
    other image size: a fixed Reshape to 64x64."""
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([1, 1, 64, 64], np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["input", "weight"], ["conv"]),
        helper.make_node("Reshape", ["conv", "shape"], ["fixed"]),
        helper.make_node("Sigmoid", ["fixed"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fails",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [attacks.weight(1), shape],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", attacks.OPSET)], ir_version=attacks.IR_VERSION
    )
    return bytes(model.SerializeToString())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Container]]:
    healing = HealingSettings(
        rollback=RollbackSettings(min_predictions=5, max_error_rate=0.5, watch_window_s=600)
    )
    container = build_container(make_settings(tmp_path, healing=healing))
    _, secret = make_key(container, "admin", role="admin")
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {secret}"}, container
    container.close()


def _register(client: TestClient, auth: dict[str, str], data: bytes) -> int:
    r = client.post(
        "/v1/models/seg/versions", params={"input_spec": SPEC}, content=data, headers=auth
    )
    assert r.status_code == 201, r.text
    return int(r.json()["version"])


def _rollbacks() -> float:
    labels = {"model": "seg", "reason": "error_rate"}
    return REGISTRY.get_sample_value("pixelmill_model_rollbacks_total", labels) or 0.0


def test_a_promoted_version_that_fails_is_rolled_back(world: Any) -> None:
    client, auth, container = world
    image = png((np.random.default_rng(0).random((96, 96)) * 255).astype(np.uint8))
    image_id = client.post("/v1/images", content=image, headers=auth).json()["id"]

    def predict() -> int:
        return client.post(
            "/v1/models/seg@production/predict", json={"image_id": image_id}, headers=auth
        ).status_code

    # given a good version in production, then a broken one promoted over it
    good = _register(client, auth, attacks.conv_model(1))
    client.put("/v1/models/seg/aliases/production", json={"version": good}, headers=auth)
    assert predict() == 200
    bad = _register(client, auth, fails_off_64px())
    promoted = client.put("/v1/models/seg/aliases/production", json={"version": bad}, headers=auth)
    assert promoted.status_code == 200
    before = _rollbacks()
    # when its predictions fail
    statuses = [predict() for _ in range(5)]
    assert statuses == [422] * 5
    # then production is back on the good version, by itself, and predictions work
    assert client.get("/v1/models/seg", headers=auth).json()["aliases"]["production"] == good
    assert predict() == 200
    # and the audit says who did it and why
    last = client.get("/v1/models/seg/audit", headers=auth).json()["items"][-1]
    assert last["action"] == "rollback"
    assert last["actor"] == ROLLBACK_ACTOR
    assert (last["from_version"], last["to_version"]) == (bad, good)
    assert "error rate" in last["note"]
    # and an event and the metric fired
    events = container.events.list(limit=20)
    rolled = [e for e in events if e.action == "model.rollback"]
    assert len(rolled) == 1 and rolled[0].target_id == "seg"
    assert rolled[0].after["version"] == good and "error rate" in rolled[0].after["reason"]
    assert _rollbacks() == before + 1
    # and the broken version's inference breaker opened, the good one's stayed closed
    states = container.breakers.states()
    assert (states[f"inference:seg:{bad}"], states[f"inference:seg:{good}"]) == ("open", "closed")
    bad_label = {"breaker": f"inference:seg:{bad}"}
    assert REGISTRY.get_sample_value("pixelmill_breaker_state", bad_label) == 2


def test_a_healthy_promotion_stays(world: Any) -> None:
    client, auth, _container = world
    image = png((np.random.default_rng(1).random((96, 96)) * 255).astype(np.uint8))
    image_id = client.post("/v1/images", content=image, headers=auth).json()["id"]
    first = _register(client, auth, attacks.conv_model(1))
    client.put("/v1/models/seg/aliases/production", json={"version": first}, headers=auth)
    second = _register(client, auth, attacks.conv_model(1) + b"")  # same bytes, new version
    client.put("/v1/models/seg/aliases/production", json={"version": second}, headers=auth)
    for _ in range(8):
        r = client.post(
            "/v1/models/seg@production/predict", json={"image_id": image_id}, headers=auth
        )
        assert r.status_code == 200, r.text
    assert client.get("/v1/models/seg", headers=auth).json()["aliases"]["production"] == second
