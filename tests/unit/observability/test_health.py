"""The health endpoint of processes that are not the gateway: probes answer, a failing
dependency is named without its error text, and it listens on loopback by default."""

from __future__ import annotations

import httpx

from pixelmill.observability.health import HealthServer
from pixelmill.settings import ObservabilitySettings


def broken() -> None:
    raise ConnectionError("db.internal:5432 password authentication failed for 'pixelmill'")


def test_readiness_names_the_failing_check_without_its_error_text() -> None:
    server = HealthServer(
        "127.0.0.1",
        0,
        {"database": broken, "broker": lambda: None},
        metrics=lambda: (b"pixelmill_up 1\n", "text/plain"),
    ).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "not ready",
            "checks": {"database": "unavailable", "broker": "ok"},
        }
        assert "5432" not in ready.text and "password" not in ready.text
        assert httpx.get(f"{base}/livez").json() == {"status": "ok"}
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/metrics").text == "pixelmill_up 1\n"
        assert httpx.get(f"{base}/elsewhere").status_code == 404
    finally:
        server.stop()


def test_a_dead_process_fails_liveness() -> None:
    server = HealthServer("127.0.0.1", 0, {}, live=lambda: False).start()
    try:
        assert httpx.get(f"http://127.0.0.1:{server.port}/livez").status_code == 503
        assert httpx.get(f"http://127.0.0.1:{server.port}/metrics").status_code == 404
    finally:
        server.stop()


def test_workers_listen_on_loopback_and_not_at_all_unless_asked() -> None:
    settings = ObservabilitySettings()
    assert (settings.health_host, settings.health_port) == ("127.0.0.1", 0)
    assert settings.tracing.exporter == "none"
