"""Chaos with real components, bounded and on loopback: a Redis of the test's own is
killed under render load, and the S3 server (SeaweedFS) is cut off behind a proxy.
Only processes and sockets these tests start are touched."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.settings import CacheSettings, StorageSettings
from pixelmill.settings_healing import BreakerSettings, HealingSettings
from tests.chaos import own_redis, tcp_proxy
from tests.conftest import make_settings
from tests.helpers import make_image, make_key

pytestmark = pytest.mark.server

FAST_BREAKER = HealingSettings(
    breakers=BreakerSettings(failure_rate=0.5, min_calls=3, window_s=30, reset_timeout_s=0.5)
)


def _until(check: Callable[[], bool], limit_s: float = 15) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def _cache_lookups(result: str) -> float:
    return REGISTRY.get_sample_value("pixelmill_render_cache_total", {"result": result}) or 0.0


def test_redis_killed_under_render_load_renders_keep_succeeding(tmp_path: Path) -> None:
    with own_redis() as redis_server:
        settings = make_settings(
            tmp_path, cache=CacheSettings(url=redis_server.url), healing=FAST_BREAKER
        )
        container = build_container(settings)
        _, secret = make_key(container, "admin", role="admin")
        auth = {"Authorization": f"Bearer {secret}"}
        try:
            with TestClient(create_app(container), raise_server_exceptions=False) as client:
                image_id = client.post("/v1/images", content=make_image(320, 240), headers=auth)
                image_id = image_id.json()["id"]

                def render(width: int) -> int:
                    url = f"/v1/images/{image_id}/render?w={width}&format=png"
                    return client.get(url, headers=auth).status_code

                # given renders being cached in Redis
                assert render(100) == 200
                hits = _cache_lookups("hit")
                assert render(100) == 200
                assert _cache_lookups("hit") == hits + 1
                # when Redis dies while renders keep coming
                with ThreadPoolExecutor(4) as pool:
                    before = [pool.submit(render, 60 + i) for i in range(8)]
                    redis_server.stop()
                    during = [pool.submit(render, 60 + i % 12) for i in range(40)]
                    statuses = [f.result() for f in before + during]
                # then every render still succeeds, uncached
                assert statuses == [200] * len(statuses)
                assert container.breakers.states()["cache"] == "open"
                assert client.get("/readyz").status_code == 503
        finally:
            container.close()


def test_s3_cut_opens_the_breaker_fails_fast_and_closes_after_recovery(
    tmp_path: Path, s3_settings: StorageSettings
) -> None:
    endpoint = urlsplit(s3_settings.s3_endpoint_url or "")
    with tcp_proxy(endpoint.hostname or "127.0.0.1", endpoint.port or 80) as proxy:
        storage = s3_settings.model_copy(
            update={"s3_endpoint_url": f"http://127.0.0.1:{proxy.port}"}
        )
        container = build_container(make_settings(tmp_path, storage=storage, healing=FAST_BREAKER))
        _, secret = make_key(container, "admin", role="admin")
        auth = {"Authorization": f"Bearer {secret}"}
        try:
            with TestClient(create_app(container), raise_server_exceptions=False) as client:
                data = make_image(200, 150)
                image_id = client.post("/v1/images", content=data, headers=auth).json()["id"]
                original = f"/v1/images/{image_id}/original"
                assert client.get(original, headers=auth).content == data
                # when the S3 server becomes unreachable
                proxy.cut()
                statuses = [client.get(original, headers=auth).status_code for _ in range(4)]
                # then requests fail with 503 and the breaker opens
                assert set(statuses) == {503}
                assert container.breakers.states()["storage"] == "open"
                refused = client.get(original, headers=auth)
                assert refused.status_code == 503
                assert refused.headers["Retry-After"] == str(FAST_BREAKER.breakers.retry_after_s)
                assert refused.json()["breaker"] == "storage"
                assert (
                    REGISTRY.get_sample_value("pixelmill_breaker_state", {"breaker": "storage"})
                    == 2
                )
                # when S3 is back, a probe closes the breaker and reads work again
                proxy.restore()
                _until(lambda: client.get(original, headers=auth).status_code == 200)
                assert container.breakers.states()["storage"] == "closed"
                assert client.get(original, headers=auth).content == data
        finally:
            container.close()
