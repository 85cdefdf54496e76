"""Secrets never reach a log line: API keys, passwords (login bodies), session cookies,
CSRF tokens and URL signatures, with every logger at DEBUG while real requests run.
The lines still say which request, user and study they belong to."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixelmill.backends.metadata.events import Actor
from pixelmill.observability.logging import configure_logging
from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.services.gateway.signing import sign_url
from pixelmill.settings import ObservabilitySettings
from tests.conftest import make_settings
from tests.helpers import make_image, make_key

PASSWORD = "tr0ub4dor&3-horse-staple"
SIGNING_KEY = "signing-secret-0123456789"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every process-wide log line at DEBUG, as JSON, into a buffer; restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging(ObservabilitySettings(log_level="DEBUG", log_format="json"), stream=buffer)
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_keys_passwords_cookies_csrf_tokens_and_signatures_stay_out_of_logs(
    tmp_path: Path, log_lines: io.StringIO
) -> None:
    # given a gateway with a user who has a password and an API key, and a signing key
    settings = make_settings(tmp_path, security={"signing_key": SIGNING_KEY})
    container = build_container(settings)
    container.accounts.create_user(Actor(), "vic", password=PASSWORD)
    _, key = make_key(container, "vic's key", "write", username="vic")
    bearer = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        # when they upload with the key, log in (and fail once), act with the cookie and
        # CSRF token, present a revoked-looking key, and fetch a signed render URL
        image = client.post("/v1/images", content=make_image(64, 48), headers=bearer).json()
        assert client.post(
            "/v1/auth/login", json={"username": "vic", "password": PASSWORD + "x"}
        ).status_code in (401, 429)
        time.sleep(1.1)  # past the failed login's slow-down
        login = client.post("/v1/auth/login", json={"username": "vic", "password": PASSWORD})
        assert login.status_code == 200, login.text
        csrf = login.json()["csrf_token"]
        cookie = client.cookies.get("pm_session")
        assert cookie
        study = client.post(
            "/v1/studies", json={"name": "Leaky study"}, headers={"X-CSRF-Token": csrf}
        )
        assert study.status_code == 201, study.text
        study_id = study.json()["id"]
        assert client.get(f"/v1/studies/{study_id}").status_code == 200
        assert client.post("/v1/studies", json={"name": "no csrf"}).status_code == 403
        client.cookies.clear()
        forged = key[:-4] + "AAAA"
        assert client.get("/v1/images", headers={"Authorization": f"Bearer {forged}"}).status_code
        url = sign_url(SIGNING_KEY, f"/v1/images/{image['id']}/render?w=32", expires=2**31)
        assert client.get(url).status_code == 200
    container.close()
    # then none of those secrets is in any line
    text = log_lines.getvalue()
    signature = url.rsplit("sig=", 1)[1]
    for secret in (key, forged, key.rsplit("_", 1)[1], PASSWORD, cookie, csrf, signature):
        assert secret not in text, secret
    # though the lines were written, with the request, user and study they belong to
    lines = [json.loads(line) for line in text.splitlines()]
    assert any("sig=***" in line["message"] for line in lines)  # the client's URL line
    access = [line for line in lines if line["logger"] == "pixelmill.access"]
    assert len(access) >= 8 and all(len(line["request_id"]) == 32 for line in access)
    assert any(line.get("user") == "vic" for line in access)
    assert any(line.get("study") == study_id for line in access)
