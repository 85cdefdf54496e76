"""``GET /v1/autoscaler``: the live autoscaler's decisions as the gateway shows them, in
embedded mode (SQLite, the in-process broker) with the autoscaler in dry run."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from pixelmill.runtime.autoscale import build_autoscaler
from tests.helpers import make_key


def test_admins_see_the_latest_decision_per_queue_with_its_reasons(
    client: TestClient, container: Any, auth: dict[str, str]
) -> None:
    # given no decision yet
    assert client.get("/v1/autoscaler", headers=auth).json() == {"services": {}}
    # when the autoscaler decides twice in dry run over an idle system
    autoscaler = build_autoscaler(container, dry_run=True)
    autoscaler.tick()
    autoscaler.tick()
    # then each queue shows one decision, with reasons, marked as a dry run
    body = client.get("/v1/autoscaler", headers=auth).json()
    assert set(body["services"]) == {"transform", "analyse", "segment", "train"}
    transform = body["services"]["transform"]
    assert transform["dry_run"] is True and transform["reasons"]
    assert transform["replicas"] >= 1  # the minimum
    assert transform["inputs"]["queue_ready"] == 0
    # and an unchanged decision wrote no second event
    events = container.events.list(action="autoscaler.decision", limit=50)
    assert len(events) == 4


def test_other_callers_are_refused(client: TestClient, container: Any) -> None:
    _, writer = make_key(container, "writer", role="write")
    refused = client.get("/v1/autoscaler", headers={"Authorization": f"Bearer {writer}"})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/autoscaler").status_code == 401
