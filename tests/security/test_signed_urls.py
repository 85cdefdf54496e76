"""Attacks on signed render URLs: replaying one forever, surviving a leaked key, crashing
the check with a malformed signature, tampering with its expiry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from pixelmill.runtime.cli import main
from pixelmill.services.gateway.signing import sign_url
from tests.conftest import make_settings
from tests.security.signed_world import signing_gateway

OLD, NEW = "old-secret-0123456789", "new-secret-9876543210"


@pytest.fixture
def signed(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    """A gateway that signs with a legacy key and a rotated key "k2"; an image's render path."""
    settings = make_settings(tmp_path, security={"signing_key": OLD, "signing_keys": {"k2": NEW}})
    with signing_gateway(settings) as (client, image):
        yield client, f"/v1/images/{image}/render?w=40"


def test_an_expired_url_is_refused_and_its_expiry_cannot_be_moved(
    signed: tuple[TestClient, str],
) -> None:
    client, path = signed
    live = sign_url(OLD, path, expires=int(time.time()) + 600)
    assert client.get(live).status_code == 200
    gone = sign_url(OLD, path, expires=int(time.time()) - 1)
    resp = client.get(gone)
    assert resp.status_code == 403 and "expired" in resp.json()["detail"]
    # pushing the expiry out breaks the signature
    pushed = gone.replace(f"expires={int(time.time()) - 1}", f"expires={int(time.time()) + 9999}")
    assert client.get(pushed).status_code == 403


def test_keys_rotate_by_id_and_an_unknown_id_is_refused(signed: tuple[TestClient, str]) -> None:
    client, path = signed
    assert client.get(sign_url(NEW, path, key_id="k2")).status_code == 200
    assert client.get(sign_url(OLD, path)).status_code == 200  # the legacy key still works
    assert client.get(sign_url(OLD, path, key_id="k2")).status_code == 403  # wrong key for k2
    assert client.get(sign_url(NEW, path, key_id="k9")).status_code == 403


@pytest.mark.parametrize("sig", ["%C3%A9", "%00", "é" * 50, ""])
def test_a_malformed_signature_is_a_403_not_a_server_error(
    signed: tuple[TestClient, str], sig: str
) -> None:
    client, path = signed
    resp = client.get(f"{path}&sig={sig}")
    # a NUL anywhere in a URL is refused before any route (422, tests/integration/
    # gateway/test_text_input.py); every other malformed signature is a bad signature
    assert resp.status_code == (422 if sig == "%00" else 403)
    assert resp.headers["content-type"] == "application/problem+json"


def test_the_cli_reads_the_key_from_a_file_and_signs_an_expiring_url(
    signed: tuple[TestClient, str], tmp_path: Path
) -> None:
    client, path = signed
    key_file = tmp_path / "signing.key"
    key_file.write_text(NEW + "\n")
    result = CliRunner().invoke(
        main, ["sign", path, "--key-file", str(key_file), "--key-id", "k2", "--expires-in", "60"]
    )
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    assert "expires=" in url and "kid=k2" in url
    assert client.get(url).status_code == 200
