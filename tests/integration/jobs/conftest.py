"""Fixtures for job tests: an embedded gateway whose jobs run in-process, and a small
distributed cluster — real RabbitMQ + PostgreSQL, worker *processes* started (and
killed) by PID, the gateway app in-process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.tables_jobs import job_events
from pixelmill.runtime.container import Container, build_container
from pixelmill.services.gateway.app import create_app
from pixelmill.services.jobs.service import JobService
from pixelmill.settings import Settings
from tests.helpers import make_image, make_key
from tests.jobs_helpers import wait_for

REPO = Path(__file__).resolve().parents[3]
TERMINAL = ("succeeded", "failed", "cancelled")


def job_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "jobs": {"plugins": ["tests.jobs_kinds"], "embedded_threads": 2},
        "broker": {"min_backoff_s": 0.05, "max_backoff_s": 0.2, "max_retries": 2},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Settings(**base)


def job_settings_on(
    database: str, request: pytest.FixtureRequest, tmp_path: Path, **overrides: Any
) -> Settings:
    """:func:`job_settings` on ``database``: ``"sqlite"`` (the data folder's file) or
    ``"postgresql"`` (a fresh database of the ``postgres_url`` fixture)."""
    if database == "postgresql":
        overrides["database"] = {"url": request.getfixturevalue("postgres_url")}
    return job_settings(tmp_path, **overrides)


@dataclass
class Gateway:
    """A gateway app over a container, with a write key, in this process."""

    container: Container
    client: TestClient
    auth: dict[str, str]

    @property
    def jobs(self) -> JobService:
        return self.container.jobs

    def upload(self, width: int = 64, height: int = 48, *, seed: int = 0, fmt: str = ".png") -> str:
        resp = self.client.post(
            "/v1/images", content=make_image(width, height, seed=seed, fmt=fmt), headers=self.auth
        )
        assert resp.status_code in (200, 201), resp.text
        return str(resp.json()["id"])

    def submit(self, **body: Any) -> dict[str, Any]:
        resp = self.client.post("/v1/jobs", json=body, headers=self.auth)
        assert resp.status_code == 202, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def job(self, job_id: str) -> dict[str, Any]:
        resp = self.client.get(f"/v1/jobs/{job_id}", headers=self.auth)
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def wait(self, job_id: str, *, timeout: float = 20.0) -> dict[str, Any]:
        return wait_for(  # type: ignore[no-any-return]
            lambda: (j := self.job(job_id))["state"] in TERMINAL and j,
            timeout=timeout,
            interval=0.05,
        )


def open_gateway(settings: Settings) -> Iterator[Gateway]:
    container = build_container(settings)
    _, secret = make_key(container, "jobs test", role="write")
    try:
        with TestClient(create_app(container), raise_server_exceptions=False) as client:
            yield Gateway(container, client, {"Authorization": f"Bearer {secret}"})
    finally:
        container.close()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    """Embedded mode: SQLite, local folder, in-process broker and job threads."""
    yield from open_gateway(job_settings(tmp_path))


@dataclass
class Cluster:
    """RabbitMQ + PostgreSQL + worker processes; the gateway runs in this process."""

    env: dict[str, str]
    gateway: Gateway
    logs: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(
        self, *, queues: str = "transform", threads: int = 2
    ) -> subprocess.Popen[bytes]:
        n = len(self.workers)
        log = (self.logs / f"worker-{n}.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from pixelmill.runtime.cli import main; main()",
                "worker",
                "--queues",
                queues,
                "--threads",
                str(threads),
                "--shutdown-timeout",
                "10",
            ],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        path = self.logs / f"worker-{n}.log"
        wait_for(
            lambda: b"worker ready" in path.read_bytes() or proc.poll() is not None, timeout=30
        )
        assert proc.poll() is None, path.read_text()
        return proc

    def succeeded_events(self, job_id: str) -> int:
        """How many times the job's history recorded it succeeding (exactly-once: 1)."""
        with self.gateway.container.db.begin() as conn:
            rows = conn.execute(
                sa.select(job_events.c.data).where(
                    job_events.c.job_id == job_id, job_events.c.type == "state"
                )
            ).scalars()
            return sum(1 for data in rows if data.get("state") == "succeeded")

    def log(self, n: int) -> str:
        return (self.logs / f"worker-{n}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(10)


def cluster_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            # this checkout's code, not whatever `pixelmill` the venv has installed
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
            "PIXELMILL_DATA_DIR": str(settings.data_dir),
            "PIXELMILL_DATABASE__URL": settings.database.url,
            "PIXELMILL_STORAGE__URL": settings.storage_url,
            **{
                f"PIXELMILL_STORAGE__{key.upper()}": str(value)
                for key, value in settings.storage.model_dump().items()
                if key.startswith("s3_") and value is not None
            },
            "PIXELMILL_BROKER__URL": settings.broker.url,
            "PIXELMILL_BROKER__NAMESPACE": settings.broker.namespace,
            "PIXELMILL_BROKER__MIN_BACKOFF_S": str(settings.broker.min_backoff_s),
            "PIXELMILL_BROKER__MAX_BACKOFF_S": str(settings.broker.max_backoff_s),
            "PIXELMILL_BROKER__MAX_RETRIES": str(settings.broker.max_retries),
            "PIXELMILL_BROKER__DELIVERY_LIMIT": str(settings.broker.delivery_limit),
            "PIXELMILL_JOBS__PLUGINS": '["tests.jobs_kinds"]',
            "PIXELMILL_JOBS__SWEEP_INTERVAL_S": "1",
            "PIXELMILL_JOBS__REPUBLISH_AFTER_S": "2",
            "PIXELMILL_OBSERVABILITY__LOG_LEVEL": "INFO",
        }
    )
    return env


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, amqp_url: str) -> Iterator[Cluster]:
    yield from make_cluster(
        tmp_path, postgres_url, amqp_url, {"url": f"file://{tmp_path / 'objects'}"}
    )


@pytest.fixture
def s3_cluster(
    tmp_path: Path, postgres_url: str, amqp_url: str, s3_settings: Any
) -> Iterator[Cluster]:
    """The cluster with results in S3 (SeaweedFS)."""
    yield from make_cluster(tmp_path, postgres_url, amqp_url, s3_settings.model_dump())


def make_cluster(
    tmp_path: Path, postgres_url: str, amqp_url: str, storage: dict[str, Any]
) -> Iterator[Cluster]:
    settings = job_settings(
        tmp_path,
        database={"url": postgres_url},
        broker={
            "url": amqp_url,
            "namespace": f"pmtest-{uuid.uuid4().hex[:8]}",
            "delivery_limit": 2,
            "min_backoff_s": 0.2,
            "max_backoff_s": 2.0,
            "max_retries": 8,
        },
        storage=storage,
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    gen = open_gateway(settings)
    gw = next(gen)
    c = Cluster(cluster_env(settings), gw, logs)
    try:
        yield c
    finally:
        c.stop()
        broker = gw.jobs.broker
        gen.close()
        purge = getattr(broker, "purge", None)
        if purge is not None:
            for _ in range(3):
                try:
                    purge()
                    break
                except Exception:
                    time.sleep(1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated job database: SQLite, then the machine's PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    yield from migrated(url)


def migrated(url: str) -> Iterator[Database]:
    """A migrated database at ``url``, disposed after the test (``yield from`` it)."""
    database = Database(url)
    database.upgrade()
    yield database
    database.dispose()
