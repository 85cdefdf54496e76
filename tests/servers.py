"""Fixtures for real servers: PostgreSQL, Redis, RabbitMQ (running on the machine and in
CI) and S3 (SeaweedFS started by a fixture). Each skips locally with the reason when the
server is unreachable and fails in CI."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from benchmarks._harness.s3 import (
    S3_ACCESS_KEY,
    S3_BUCKET,
    S3_REGION,
    S3_SECRET_KEY,
    running_weed,
)

from tests.helpers import require_server, unavailable

if TYPE_CHECKING:
    from pixelmill.settings import StorageSettings

PG_ADMIN_URL = os.environ.get(
    "PIXELMILL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("PIXELMILL_TEST_REDIS", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("PIXELMILL_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    require_server("PostgreSQL", "127.0.0.1", 5432)
    name = f"pm_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def postgres_module_url() -> Iterator[str]:
    """A fresh PostgreSQL database shared by the tests of one module (creating one per
    test costs ~0.5 s); the module's tests clean their own rows. Dropped afterwards."""
    require_server("PostgreSQL", "127.0.0.1", 5432)
    name = f"pm_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


#: DB 15 is this machine's one Redis test database, whichever test suite runs
REDIS_LOCK = Path(tempfile.gettempdir()) / "pixelmill-tests-redis.lock"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Redis DB 15, flushed before and after the test, and the test's alone: a test suite
    running beside this one on the machine waits for it (each flushes the database, and
    a flush in the middle of another's test removed keys that test had just written)."""
    require_server("Redis", "127.0.0.1", 6379)
    import redis

    with REDIS_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        yield REDIS_URL
        client.flushdb()
        client.close()


@pytest.fixture
def amqp_url(_rabbit_dead_letters_supervised: None) -> str:
    return AMQP_URL


@pytest.fixture(scope="session")
def _rabbit_dead_letters_supervised() -> None:
    """RabbitMQ is reachable, and (when ``rabbitmqctl`` is here) its node still has the
    supervisor of at-least-once dead-letter workers: RabbitMQ 3.10 can lose it for good
    (docs/operations.md), after which every publish to a new queue is refused. Checked
    once a session so a broken node fails with the repair, not as scattered nacks."""
    require_server("RabbitMQ", "127.0.0.1", 5672)
    if shutil.which("rabbitmqctl") is None:
        return
    done = subprocess.run(
        ["rabbitmqctl", "eval", "whereis(rabbit_fifo_dlx_sup)."],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode == 0 and done.stdout.strip() == "undefined":
        unavailable(
            "the RabbitMQ node lost its dead-letter supervisor (rabbit_fifo_dlx_sup); "
            "repair: rabbitmqctl stop_app && rabbitmqctl start_app"
        )


# --- S3: a SeaweedFS server started for the test session --------------------------------


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server and the credentials that sign requests to it."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    pid: int


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """SeaweedFS (``weed mini``, started by ``benchmarks/_harness/s3.py``) on loopback for
    the session, stopped by PID at the end. Skips locally / fails in CI when it cannot
    start."""
    workdir = Path(tempfile.mkdtemp(prefix="pm-weed-"))
    try:
        with running_weed(workdir) as (pid, endpoint):
            yield S3Server(endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, pid)
    except RuntimeError as exc:
        unavailable(str(exc))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def s3_settings(s3_server: S3Server) -> StorageSettings:
    """Storage settings for the session's S3 server: the shared test bucket under a prefix
    of this test's own; use as ``make_settings(tmp_path, storage=s3_settings)``. For a
    bucket of your own, ``s3_settings.model_copy(update={"url": "s3://NAME"})``."""
    from pixelmill.settings import StorageSettings

    return StorageSettings(
        url=f"s3://{S3_BUCKET}",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_region=s3_server.region,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_prefix=f"t-{uuid.uuid4().hex[:12]}",
    )


def purge_namespace(amqp_url: str, namespace: str) -> None:
    """Delete the quorum queues a test's broker namespace made (left behind, they pile up
    in the machine's RabbitMQ, which slows it down and once hung it)."""
    from pixelmill.backends.broker.rabbitmq import RabbitmqBroker

    RabbitmqBroker(amqp_url, namespace=namespace).purge()
