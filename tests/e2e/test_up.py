"""`pixelmill up` as a user runs it: one command, a printed admin key, persistence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pixelmill import __version__
from pixelmill.runtime.cluster import free_port
from tests.helpers import make_image

PIXELMILL = str(Path(sys.executable).with_name("pixelmill"))


def _free_port() -> int:
    return free_port()


class Server:
    def __init__(
        self, data_dir: Path, port: int, *options: str, settings: dict[str, str] | None = None
    ) -> None:
        """``settings``: ``PIXELMILL_*`` variables for the server (no others pass)."""
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELMILL_")}
        env.update(settings or {})
        self.proc = subprocess.Popen(
            [PIXELMILL, "up", "--port", str(port), "--data-dir", str(data_dir), *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.output = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"pixelmill up exited: {self.proc.stdout.read()}")  # type: ignore[union-attr]
            time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError("pixelmill up did not become healthy in 60 s")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.output += out or ""
        return self.output


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "pm-data"


@pytest.mark.slow
def test_up_prints_an_admin_key_once_serves_and_keeps_data(data_dir: Path) -> None:
    port = _free_port()
    server = Server(data_dir, port)
    try:
        image = make_image(800, 600)
        anonymous = httpx.post(server.url + "/v1/images", content=image)
        assert anonymous.status_code == 401
    finally:
        first_output = server.stop()
    # a short banner says where it runs and what to do; no migration log on a first start
    assert f"pixelmill {__version__} on http://127.0.0.1:{port}" in first_output
    key_file = data_dir / "admin-api-key"
    for line in (f"data       {data_dir}", "mode       embedded", f"admin key  in {key_file}"):
        assert line in first_output, first_output
    assert f"http://127.0.0.1:{port}/docs" in first_output
    assert "alembic" not in first_output and "Running upgrade" not in first_output
    # no terminal here (a service's log): the key is in a file only its user reads
    key = key_file.read_text().strip()
    assert key.startswith("pm_") and key not in first_output
    assert key_file.stat().st_mode & 0o777 == 0o600
    # and so is the first admin's password
    password_file = data_dir / "admin-password"
    password = password_file.read_text().strip()
    assert len(password) >= 10 and password not in first_output
    assert password_file.stat().st_mode & 0o777 == 0o600
    # only hashes of the key and the password are on disk
    db_bytes = (data_dir / "pixelmill.db").read_bytes()
    assert key.encode() not in db_bytes and password.encode() not in db_bytes

    server = Server(data_dir, port)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        up = httpx.post(server.url + "/v1/images", content=image, headers=headers)
        assert up.status_code == 201
        image_id = up.json()["id"]
        thumb_url = f"{server.url}/v1/images/{image_id}/render?w=300&h=200&format=webp"
        assert httpx.get(thumb_url).status_code == 401  # private by default
        thumb = httpx.get(thumb_url, headers=headers)
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
        metrics = httpx.get(server.url + "/metrics").text
        assert "pixelmill_http_requests_total" in metrics
    finally:
        second_output = server.stop()
    assert "Created the" not in second_output  # not re-created
    assert "admin key  given at the first start" in second_output

    server = Server(data_dir, port)
    try:
        # the admin logs in with the password from the first start: a cookie session
        with httpx.Client(base_url=server.url) as browser:
            login = browser.post("/v1/auth/login", json={"username": "admin", "password": password})
            assert login.status_code == 200, login.text
            listing = browser.get("/v1/images").json()
            assert [i["id"] for i in listing["items"]] == [image_id]
    finally:
        server.stop()


@pytest.mark.slow
def test_up_verbose_shows_the_migrations(data_dir: Path) -> None:
    # given a first start with --verbose
    port = _free_port()
    server = Server(data_dir, port, "--verbose")
    output = server.stop()
    # then the INFO log (JSON lines: not a terminal), Alembic's migration lines included,
    # comes before the banner
    assert '"logger": "alembic.runtime.migration", "message": "Running upgrade' in output, output
    assert output.index("Running upgrade") < output.index(f"on http://127.0.0.1:{port}")


def test_users_and_keys_cli(tmp_path: Path) -> None:
    data = str(tmp_path / "d")

    def cli(*args: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELMILL_")}
        done = subprocess.run(
            [PIXELMILL, *args, "--data-dir", data],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    user = json.loads(cli("users", "add", "ci", "--name", "CI robot"))
    assert user["site_role"] == "member" and len(user["password"]) >= 10
    assert "ci\tmember\tactive" in cli("users", "list")
    new_password = cli("users", "reset-password", "ci").strip()
    assert len(new_password) >= 10 and new_password != user["password"]
    created = json.loads(cli("keys", "create", "ci-bot", "--role", "read", "--user", "ci"))
    assert created["key"].startswith("pm_") and created["role"] == "read"
    listing = cli("keys", "list")
    assert created["id"] in listing and "active" in listing
    assert created["key"] not in listing
    cli("keys", "revoke", created["id"])
    assert "revoked" in cli("keys", "list")
    cli("users", "disable", "ci")
    assert "ci\tmember\tdisabled" in cli("users", "list")
