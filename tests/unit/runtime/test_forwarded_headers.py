"""uvicorn's defaults (``proxy_headers=True``, ``forwarded_allow_ips=127.0.0.1``) let any
local client pick its address with ``X-Forwarded-For`` (rate limits, lockouts, the audit
log). The server believes the header only from ``server.forwarded_allow_ips``."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import pytest
import uvicorn

from pixelmill.runtime import asgi
from pixelmill.runtime.cluster import free_port
from pixelmill.settings import Settings


def _config_of(monkeypatch: pytest.MonkeyPatch, *args: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    asgi.run_server(*args)
    return seen


def test_by_default_no_proxy_header_is_believed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().server.forwarded_allow_ips == ""
    kwargs = _config_of(monkeypatch, "127.0.0.1", 8000, 1)
    config = uvicorn.Config(**kwargs)
    assert config.proxy_headers is False


def test_the_setting_names_the_proxies_believed(monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = _config_of(monkeypatch, "127.0.0.1", 8000, 1, "10.0.0.0/8, 127.0.0.1")
    config = uvicorn.Config(**kwargs)
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == "10.0.0.0/8, 127.0.0.1"


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps({"client": scope["client"][0]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _client_seen(monkeypatch: pytest.MonkeyPatch, *proxies: str) -> str:
    """The client address a real uvicorn on loopback, configured as run_server does,
    sees for a local request that claims to come from 203.0.113.9."""
    port = free_port()
    kwargs = _config_of(monkeypatch, "127.0.0.1", port, 1, *proxies)
    kwargs.pop("app"), kwargs.pop("factory"), kwargs.pop("workers")
    server = uvicorn.Server(uvicorn.Config(_echo, **kwargs))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/", headers={"X-Forwarded-For": "203.0.113.9"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            return str(json.loads(resp.read())["client"])
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_local_client_cannot_claim_another_address(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _client_seen(monkeypatch) == "127.0.0.1"


def test_a_configured_proxy_names_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _client_seen(monkeypatch, "127.0.0.1") == "203.0.113.9"
