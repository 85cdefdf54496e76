"""Fixtures for real servers: PostgreSQL, Redis, RabbitMQ (running on the machine and in
CI) and S3 (SeaweedFS started by a fixture). Each skips locally with the reason when the
server is unreachable and fails in CI."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.helpers import require_server

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
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Redis DB 15, flushed before and after the test."""
    require_server("Redis", "127.0.0.1", 6379)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def amqp_url() -> str:
    require_server("RabbitMQ", "127.0.0.1", 5672)
    return AMQP_URL
