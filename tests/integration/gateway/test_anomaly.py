"""The anomaly monitor over a real gateway's own metrics: a latency jump raises an
``anomaly`` event in the events table and the metric."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from pixelmill.runtime.container import Container
from pixelmill.services.anomaly import AnomalyMonitor
from pixelmill.settings_healing import AnomalySettings
from tests.helpers import make_image


def test_a_latency_jump_raises_an_anomaly_event(
    client: TestClient, container: Container, auth: dict[str, str]
) -> None:
    policy = AnomalySettings(warmup=5, persistence=2, threshold=6.0)
    monitor = AnomalyMonitor(policy, events=container.events)
    before = REGISTRY.get_sample_value("pixelmill_anomalies_total", {"series": "latency"}) or 0
    image_id = client.post("/v1/images", content=make_image(2400, 2400), headers=auth).json()["id"]
    # given a baseline of quick requests
    for _ in range(8):
        for _ in range(5):
            assert client.get("/healthz").status_code == 200
        assert not monitor.sample()["latency"].raised
    # when requests become slow (full-size renders of a big image, uncached)
    raised = []
    for width in range(4):
        r = client.get(f"/v1/images/{image_id}/render?w={2000 + width}&format=png", headers=auth)
        assert r.status_code == 200
        raised.append(monitor.sample()["latency"].raised)
    # then an anomaly is raised, recorded as an event and counted
    assert raised.count(True) == 1
    events = [e for e in container.events.list(limit=50) if e.action == "anomaly"]
    assert [e.target_id for e in events] == ["latency"]
    assert events[0].after["value"] > events[0].after["median"]
    assert REGISTRY.get_sample_value("pixelmill_anomalies_total", {"series": "latency"}) == (
        before + 1
    )
