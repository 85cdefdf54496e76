"""Problem answers of the real gateway: an exception nothing handled is a 500 problem
that still carries the request's id (header, body, log line) and the security headers."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from pixelmill.runtime.container import Container
from pixelmill.services.gateway.app import create_app


def test_an_unhandled_error_is_a_500_that_keeps_the_request_id(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(container)

    def boom() -> None:
        raise RuntimeError("a bug nobody expected at /srv/secret/path")

    app.add_api_route("/v1/test-boom", boom, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as client:
        caplog.set_level(logging.ERROR, logger="pixelmill.services.gateway.problems")
        answer = client.get("/v1/test-boom", headers={"X-Request-ID": "myreq-2"})
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["x-request-id"] == "myreq-2"
        assert answer.headers["x-content-type-options"] == "nosniff"
        problem = answer.json()
        assert problem["type"].endswith("/internal") and problem["status"] == 500
        assert problem["request_id"] == "myreq-2"
        assert "/srv/secret" not in answer.text and "RuntimeError" not in answer.text
        # the log line an operator searches for by the id the client reports
        logged = [r for r in caplog.records if "unhandled error" in r.getMessage()]
        assert len(logged) == 1, [r.getMessage() for r in logged]
        assert "[request myreq-2]" in logged[0].getMessage()
        assert logged[0].exc_info is not None  # with its traceback
        # a 404 on the same gateway echoes the id as before
        missing = client.get("/v1/no-such-path", headers={"X-Request-ID": "myreq-3"})
        assert missing.status_code == 404
        assert missing.headers["x-request-id"] == "myreq-3"
        assert missing.json()["request_id"] == "myreq-3"
