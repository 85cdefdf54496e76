"""Fixtures of the ML integration tests: a tiny trained model (once per module) and a
registry container over SQLite or PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.ml_helpers import TinyModel, train_tiny


@pytest.fixture(scope="session")
def tiny_model() -> TinyModel:
    pytest.importorskip("torch")
    return train_tiny()


def wait_job(client: TestClient, job_id: str, auth: dict[str, str], *, timeout: float = 120) -> Any:
    """Poll a job until it is final (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish within {timeout}s: {job}")
