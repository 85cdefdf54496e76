"""Renders of a real run, read back from the access lines a real gateway wrote."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixelmill.autoscale.sim.record import render_rows
from pixelmill.observability.logging import configure_logging
from pixelmill.runtime.container import build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.settings import ObservabilitySettings
from tests.conftest import make_settings
from tests.helpers import make_image, make_key


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def serve(tmp_path: Path, log_format: str, renders: int) -> tuple[str, list[float]]:
    """A gateway with access lines on, asked for ``renders`` renders (and other
    requests); its log text and each render's time as the client saw it."""
    import time

    buffer = io.StringIO()
    configure_logging(ObservabilitySettings(log_format=log_format), stream=buffer)
    settings = make_settings(tmp_path, observability={"access_log": True})
    container = build_container(settings)
    _, key = make_key(container, "k", "write")
    bearer = {"Authorization": f"Bearer {key}"}
    client_times = []
    with TestClient(create_app(container)) as client:
        image = client.post("/v1/images", content=make_image(64, 48), headers=bearer).json()
        for i in range(renders):
            t0 = time.perf_counter()
            answer = client.get(f"/v1/images/{image['id']}/render?w={20 + i}", headers=bearer)
            client_times.append(time.perf_counter() - t0)
            assert answer.status_code == 200
        # not renders: a listing, a render that fails, a render of nothing
        assert client.get("/v1/images", headers=bearer).status_code == 200
        bad = client.get(f"/v1/images/{image['id']}/render?w=-3", headers=bearer)
        assert bad.status_code == 422
        missing = client.get("/v1/images/" + "0" * 32 + "/render?w=10", headers=bearer)
        assert missing.status_code == 404
    container.close()
    return buffer.getvalue(), client_times


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_each_answered_render_becomes_one_row(
    tmp_path: Path, restore_logging: None, log_format: str
) -> None:
    text, client_times = serve(tmp_path, log_format, renders=12)
    rows = render_rows(text.splitlines())
    # one row per render answered 200: not the listing, the 422 or the 404
    assert len(rows) == 12
    arrivals = [at for at, _ in rows]
    assert arrivals == sorted(arrivals)
    # each took the server no longer than the client waited for it (to the logged 0.1 ms;
    # compared in order of size, which holds whatever the order of the rows)
    served = sorted(seconds for _, seconds in rows)
    for seconds, waited in zip(served, sorted(client_times), strict=True):
        assert 0 < seconds <= waited + 0.0001
    # and the run's span is the span of the requests
    assert arrivals[-1] - arrivals[0] <= sum(client_times) + 1.0
