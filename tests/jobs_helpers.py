"""Helpers shared by the job tests (the benchmarks have their own in
``benchmarks/_harness``): polling with a deadline, an embedded ``pixelmill up`` process
started (and killed) by the test, a job made straight through the repository, every job
store opened the same way, and a Server-Sent Events reader."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import orjson

from pixelmill.runtime.cluster import free_port as cluster_free_port

if TYPE_CHECKING:
    from pixelmill.backends.metadata.jobs import JobRepository, JobStore

REPO = Path(__file__).resolve().parents[1]

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


FINAL_STATES = ("succeeded", "failed", "cancelled")


def finished_job(
    client: httpx.Client,
    job_id: str,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = 120.0,
    interval: float = 0.1,
) -> dict[str, Any]:
    """``GET /v1/jobs/{job_id}`` until the job is final (succeeded, failed or cancelled);
    its JSON. Fails after ``timeout`` s showing the job as last seen."""
    seen: dict[str, Any] = {}

    def final() -> dict[str, Any] | None:
        nonlocal seen
        seen = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        return seen if seen["state"] in FINAL_STATES else None

    try:
        return wait_for(final, timeout=timeout, interval=interval)
    except AssertionError:
        raise AssertionError(f"job {job_id} not final within {timeout} s: {seen}") from None


def free_port() -> int:
    """A free port outside the kernel's ephemeral range (see the product's picker)."""
    return cluster_free_port()


def start_embedded(
    data_dir: Path, port: int, log: Path, env_extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``pixelmill up`` on ``data_dir`` (embedded: SQLite, local folder, in-process jobs,
    the test job kinds loaded) in its own process group, once ``/healthz`` answers."""
    env = dict(os.environ)
    env.update(
        {
            # this checkout's code, not whatever `pixelmill` the venv has installed
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
            "PIXELMILL_JOBS__PLUGINS": '["tests.jobs_kinds"]',
            "PIXELMILL_JOBS__EMBEDDED_THREADS": "2",
            **(env_extra or {}),
        }
    )
    for key in [k for k in env if k.startswith(("PIXELMILL_BROKER", "PIXELMILL_DATABASE"))]:
        del env[key]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pixelmill.runtime.cli import main; main()",
            "up",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        env=env,
        cwd=REPO,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: `up` and any server processes
    )

    wait_answering(proc, f"http://127.0.0.1:{port}/healthz", log)
    return proc


def wait_answering(
    proc: subprocess.Popen[bytes], url: str, log: Path, *, timeout: float = 60
) -> None:
    """Wait until ``url`` answers 200, failing with the process's log if it exits first."""

    def ok() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ok, timeout=timeout, interval=0.2)


def admin_auth(log: Path) -> dict[str, str]:
    """The ``Authorization`` header of the admin key a first ``pixelmill up`` without a
    terminal wrote to the private file its log names."""
    return {"Authorization": f"Bearer {admin_key_from_log(log.read_text())}"}


def admin_key_from_log(output: str) -> str:
    """The admin key of the file named in a first start's output (never the key itself)."""
    found = re.search(r"Created the admin API key in (\S+) ", output)
    assert found, output
    return Path(found.group(1)).read_text().strip()


def run_concurrently(*targets: Callable[[], object], timeout: float = 60) -> list[BaseException]:
    """Run each target in its own thread at once; the exceptions they raised (none: [])."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], object]) -> None:
        try:
            target()
        except BaseException as exc:  # pragma: no cover - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return errors


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def job_row(**over: object) -> dict[str, Any]:
    """The row of a queued pipeline job with a fresh id, as ``JobStore.create`` takes it."""
    from pixelmill.backends.metadata.jobs import new_job_id

    row: dict[str, Any] = {
        "id": new_job_id(),
        "kind": "pipeline",
        "queue": "transform",
        "priority": 0,
        "params": {},
        "inputs": [],
        "owner": "",
        "time_limit_s": 60.0,
        "max_retries": 3,
    }
    row.update(over)
    return row


def make_job(
    repo: JobStore | JobRepository,
    tasks: int = 1,
    *,
    images: list[str] | None = None,
    **extra: object,
) -> str:
    """A queued pipeline job with ``tasks`` tasks, straight through the repository; with
    ``inputs`` among ``extra``, one task per input; ``images`` must exist (else 422)."""
    row = job_row(**extra)
    inputs = extra.get("inputs")
    task_inputs = list(inputs) if isinstance(inputs, list) else [None] * tasks
    repo.create(
        row,
        list(enumerate(task_inputs)),
        images=images or (),
    )
    return str(row["id"])


@dataclass
class OpenStore:
    """A job store under test and how to make an image id known to it."""

    store: JobStore
    add_image: Callable[[str], None]
    close: Callable[[], None]


#: the job stores every contract runs over: in memory, SQLite (a file), PostgreSQL
JOB_STORES = ["memory", "sqlite", "postgresql"]


def open_job_store(kind: str, url: str | None = None) -> OpenStore:
    """An empty job store of ``kind`` (``url``: the database for ``sqlite`` and
    ``postgresql``, migrated here; PostgreSQL's job and image rows are emptied)."""
    import sqlalchemy as sa

    from pixelmill.backends.metadata import tables
    from pixelmill.backends.metadata.database import Database
    from pixelmill.backends.metadata.jobs import JobRepository, MemoryJobStore

    if kind == "memory":
        known: set[str] = set()
        return OpenStore(MemoryJobStore(image_exists=known.__contains__), known.add, lambda: None)
    assert url is not None
    db = Database(url)
    db.upgrade()
    if db.dialect == "postgresql":
        with db.begin() as conn:
            conn.execute(sa.text("TRUNCATE jobs, job_tasks, job_events, images CASCADE"))
    repo = JobRepository(db)

    def add_image(image_id: str) -> None:
        row = {
            "id": image_id,
            "sha256": image_id.ljust(64, "0"),
            "format": "png",
            "width": 1,
            "height": 1,
            "bands": 1,
            "bit_depth": 8,
            "interpretation": "b-w",
            "size_bytes": 1,
            "exif": {},
            "created_at": datetime.now(UTC),
        }
        with db.begin() as conn:
            conn.execute(tables.images.insert().values(**row))

    def close() -> None:
        repo.dispose()
        db.dispose()

    return OpenStore(repo, add_image, close)


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """``(event type, decoded data)`` of each event in a Server-Sent Events stream's
    lines, as they arrive."""
    kind = ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, orjson.loads(line[6:])
