"""Health, readiness, metrics, OpenAPI and the operation catalogue."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from tests.conftest import make_settings
from tests.helpers import make_image


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


def test_readiness_fails_when_the_cache_is_unreachable(tmp_path: Path) -> None:
    container = build_container(make_settings(tmp_path, cache={"url": "redis://127.0.0.1:1/0"}))
    with TestClient(create_app(container)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["cache"] != "ok"
        assert client.get("/healthz").status_code == 200
    container.close()


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_renders_cache_and_bytes(
    client: TestClient, auth: dict[str, str]
) -> None:
    before = client.get("/metrics").text
    image_id = client.post("/v1/images", content=make_image(300, 200), headers=auth).json()["id"]
    client.get(f"/v1/images/{image_id}/render?w=77&blur=1", headers=auth)
    client.get(f"/v1/images/{image_id}/render?w=77&blur=1", headers=auth)
    client.get(f"/v1/images/{image_id}/render?w=0", headers=auth)
    text = client.get("/metrics").text
    route = "/v1/images/{image_id}/render"

    def grew(name: str, **labels: str) -> float:
        return _metric(text, name, **labels) - _metric(before, name, **labels)

    assert grew("pixelmill_http_requests_total", route=route, status="200") == 2
    assert grew("pixelmill_http_requests_total", route=route, status="422") == 1
    assert grew("pixelmill_http_request_duration_seconds_count", route=route) == 3
    assert grew("pixelmill_render_cache_total", result="hit") == 1
    assert grew("pixelmill_render_cache_total", result="miss") == 1
    assert grew("pixelmill_render_seconds_count", operation="blur") == 1
    assert grew("pixelmill_bytes_in_total") > 1000
    assert grew("pixelmill_bytes_out_total", kind="render") > 0


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    # given a gateway configured with observability.metrics_enabled=false
    container = build_container(make_settings(tmp_path, observability={"metrics_enabled": False}))
    with TestClient(create_app(container)) as client:
        # then /metrics is not served (a problem+json 404), while health still answers
        off = client.get("/metrics")
        assert off.status_code == 404
        assert off.headers["content-type"] == "application/problem+json"
        assert "pixelmill_http_requests_total" not in off.text
        assert client.get("/healthz").status_code == 200
    container.close()


def test_openapi_and_operation_catalogue(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/images/{image_id}/render" in spec["paths"]
    assert client.get("/docs").status_code == 200
    catalogue = {op["name"]: op for op in client.get("/v1/operations").json()["items"]}
    assert {"resize", "blur", "watermark"} <= set(catalogue)
    assert "width" in catalogue["resize"]["params"]["properties"]
