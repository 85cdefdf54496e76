"""Job retention over SQLite and PostgreSQL: finished jobs older than the cutoff go with
their tasks, events and artifact objects (rows first, objects after the commit); active
and recent jobs and result images stay; concurrent sweepers delete each job once; the
embedded gateway and `pixelmill worker` sweep by themselves; `pixelmill jobs purge`."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.jobs import Finish, JobRepository
from pixelmill.backends.metadata.tables_jobs import job_events, job_tasks, jobs
from pixelmill.backends.storage.memory import MemoryStorage
from pixelmill.errors import BackendUnavailable, NotFound
from pixelmill.runtime.cli import main
from pixelmill.services.jobs import retention
from tests.integration.jobs.conftest import (
    Cluster,
    Gateway,
    job_settings,
    job_settings_on,
    open_gateway,
)
from tests.jobs_helpers import make_job, run_concurrently, wait_for

#: an embedded gateway (SQLite or the given DB) as a context manager
gateway_at = contextmanager(open_gateway)

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)


def finished(repo: JobRepository, state: str, *, artifact: bool = False) -> str:
    """A job that ended in ``state``; with ``artifact``, its task recorded one."""
    job_id = make_job(repo, owner="k1")
    if state == "cancelled":
        repo.cancel(job_id)
        return job_id
    repo.start_task(job_id, 0)
    key = f"jobs/{job_id}/tasks/000000/cells.json"
    arts = [{"name": "cells", "key": key, "kind": "json", "size": 2}] if artifact else None
    error = "boom" if state == "failed" else None
    repo.finish_task(job_id, 0, Finish(state, artifacts=arts, error=error))  # type: ignore[arg-type]
    return job_id


def age(db: Database, job_id: str, finished_at: datetime = OLD) -> None:
    """Pretend the job finished at ``finished_at``."""
    with db.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(finished_at=finished_at))


def rows(db: Database, job_id: str) -> tuple[int, int, int]:
    """How many job, task and event rows ``job_id`` has."""
    with db.begin() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(
                sa.select(sa.func.count()).select_from(table).where(column == job_id)
            ).scalar_one()
            for table, column in (
                (jobs, jobs.c.id),
                (job_tasks, job_tasks.c.job_id),
                (job_events, job_events.c.job_id),
            )
        )


# -- the repository -----------------------------------------------------------------------


def test_only_jobs_that_finished_before_the_cutoff_are_deleted(db: Database) -> None:
    # given old finished jobs of every final state, a recent one, and old active ones
    repo = JobRepository(db)
    old = {s: finished(repo, s, artifact=s == "succeeded") for s in ("succeeded", "failed")}
    old["cancelled"] = finished(repo, "cancelled")
    for job_id in old.values():
        age(db, job_id)
    recent = finished(repo, "succeeded")
    age(db, recent, NOW - timedelta(days=29))
    queued = make_job(repo, owner="k1")
    running = make_job(repo, tasks=2, owner="k1")
    repo.start_task(running, 0)
    repo.finish_task(running, 0, Finish("succeeded"))
    with db.begin() as conn:  # created long ago, still going
        conn.execute(jobs.update().where(jobs.c.id.in_([queued, running])).values(created_at=OLD))
    assert repo.count_finished(before=NOW - timedelta(days=30)) == 3
    # when expired jobs are purged
    purged = repo.purge_finished(before=NOW - timedelta(days=30), limit=100)
    # then exactly the old finished ones are gone, rows and all, with their artifact keys
    assert {p.id for p in purged} == set(old.values())
    keys = {p.id: p.artifact_keys for p in purged}
    assert keys[old["succeeded"]] == [f"jobs/{old['succeeded']}/tasks/000000/cells.json"]
    assert keys[old["failed"]] == keys[old["cancelled"]] == []
    for job_id in old.values():
        assert rows(db, job_id) == (0, 0, 0)
        with pytest.raises(NotFound):
            repo.get(job_id)
    for job_id in (recent, queued, running):
        assert rows(db, job_id)[:2] != (0, 0)
    assert repo.get(running).state == "running" and repo.get(queued).state == "queued"
    assert repo.purge_finished(before=NOW - timedelta(days=30), limit=100) == []


def test_concurrent_sweepers_delete_each_job_once(db: Database) -> None:
    # given 30 expired jobs and four sweepers taking batches of 4 at the same time
    repo = JobRepository(db)
    expired = set()
    for _ in range(30):
        job_id = finished(repo, "succeeded", artifact=True)
        age(db, job_id)
        expired.add(job_id)
    seen: list[str] = []

    def sweep() -> None:
        while batch := repo.purge_finished(before=NOW - timedelta(days=1), limit=4):
            seen.extend(p.id for p in batch)

    errors = run_concurrently(*[sweep] * 4)
    # then every job was deleted by exactly one of them, and none is left
    assert errors == []
    assert sorted(seen) == sorted(expired)
    assert repo.count_finished(before=datetime.now(UTC)) == 0


# -- purging objects ----------------------------------------------------------------------


class WatchedStorage(MemoryStorage):
    """Memory storage that notes any object deleted while its job's row still exists."""

    def __init__(self, repo: JobRepository) -> None:
        super().__init__()
        self.repo = repo
        self.early: list[str] = []

    def delete(self, key: str) -> None:
        try:
            self.repo.get(key.split("/")[1])
            self.early.append(key)
        except NotFound:
            pass
        super().delete(key)


def test_objects_go_only_after_their_rows_and_strays_under_the_job_go_too(db: Database) -> None:
    # given two expired jobs with artifacts, and an object a dead run left unrecorded
    repo = JobRepository(db)
    storage = WatchedStorage(repo)
    ids = [finished(repo, "succeeded", artifact=True) for _ in range(2)]
    for job_id in ids:
        age(db, job_id)
        storage.put(f"jobs/{job_id}/tasks/000000/cells.json", b"[]")
    storage.put(f"jobs/{ids[0]}/tasks/000000/stray.json", b"{}")
    storage.put("originals/keep-me", b"image")
    # when they are purged in batches of one
    result = retention.purge(repo, storage, older_than_days=30, batch=1)
    # then the rows went first (no object was deleted while its job could still be read),
    # every object under the jobs went, and nothing else did
    assert (result.jobs, result.objects, result.more) == (2, 3, False)
    assert storage.early == []
    assert list(storage.list()) == ["originals/keep-me"]


def test_a_storage_outage_leaves_harmless_objects_not_broken_jobs(db: Database) -> None:
    class Down(MemoryStorage):
        def delete(self, key: str) -> None:
            raise BackendUnavailable("storage down")

    repo = JobRepository(db)
    storage = Down()
    job_id = finished(repo, "succeeded", artifact=True)
    age(db, job_id)
    storage.put(f"jobs/{job_id}/tasks/000000/cells.json", b"[]")
    # the sweep does not fail: the job is gone, its object stays behind unseen
    result = retention.purge(repo, storage, older_than_days=30, batch=10)
    assert (result.jobs, result.objects) == (1, 0)
    with pytest.raises(NotFound):
        repo.get(job_id)
    assert list(storage.list()) == [f"jobs/{job_id}/tasks/000000/cells.json"]


def test_a_bounded_sweep_says_when_more_is_due(db: Database) -> None:
    repo = JobRepository(db)
    for _ in range(5):
        age(db, finished(repo, "failed"))
    first = retention.purge(repo, MemoryStorage(), older_than_days=30, batch=2, max_batches=2)
    assert (first.jobs, first.more) == (4, True)
    rest = retention.purge(repo, MemoryStorage(), older_than_days=30, batch=2, max_batches=2)
    assert (rest.jobs, rest.more) == (1, False)


# -- through the product -------------------------------------------------------------------


def finished_jobs(gw: Gateway) -> tuple[str, str, str]:
    """An artifact job and a pipeline job, both succeeded: (artifact job, pipeline job,
    its result image)."""
    image = gw.upload()
    tables = gw.wait(gw.submit(kind="test.artifacts", inputs=[image])["id"])
    assert tables["state"] == "succeeded"
    assert list(gw.container.storage.list(f"jobs/{tables['id']}/"))
    flipped = gw.wait(gw.submit(inputs=[image], pipeline=[{"op": "flip"}])["id"])
    assert flipped["state"] == "succeeded"
    return tables["id"], flipped["id"], flipped["results"]["images"][0]


def gone(gw: Gateway, job_id: str) -> bool:
    return gw.client.get(f"/v1/jobs/{job_id}", headers=gw.auth).status_code == 404


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.server)]
)
def test_pixelmill_jobs_purge(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = job_settings_on(database, request, tmp_path)
    cli = ["--data-dir", str(settings.data_dir)]
    if database == "postgresql":
        cli += ["--database-url", settings.database.url]
    with gateway_at(settings) as gw:
        # given two finished jobs, one with artifacts, one with a result image
        tables, flipped, result_image = finished_jobs(gw)
        runner = CliRunner()
        # a dry run counts them and deletes nothing; nothing is a day old yet
        dry = runner.invoke(main, ["jobs", "purge", "--older-than", "0", "--dry-run", *cli])
        assert dry.exit_code == 0, dry.output
        assert "would delete 2 job(s)" in dry.output
        young = runner.invoke(main, ["jobs", "purge", "--older-than", "1", *cli])
        assert "deleted 0 job(s)" in young.output and not gone(gw, tables)
        # when purged with --older-than 0
        out = runner.invoke(main, ["jobs", "purge", "--older-than", "0", *cli])
        # then both jobs and the artifact objects are gone
        assert out.exit_code == 0, out.output
        assert "deleted 2 job(s)" in out.output
        assert gone(gw, tables) and gone(gw, flipped)
        assert gw.client.get(f"/v1/jobs/{tables}/results/cells", headers=gw.auth).status_code == 404
        assert list(gw.container.storage.list("jobs/")) == []
        # but the result image is still an image the user can fetch and render
        original = gw.client.get(f"/v1/images/{result_image}/original", headers=gw.auth)
        assert original.status_code == 200 and original.content
        render = gw.client.get(f"/v1/images/{result_image}/render?w=8", headers=gw.auth)
        assert render.status_code == 200


def test_purge_without_a_retention_period_asks_for_one(tmp_path: Path) -> None:
    out = CliRunner(env={"PIXELMILL_JOBS__RETENTION_DAYS": "0"}).invoke(
        main, ["jobs", "purge", "--data-dir", str(tmp_path)]
    )
    assert out.exit_code != 0 and "--older-than" in out.output


def test_the_embedded_gateway_deletes_expired_jobs_by_itself(tmp_path: Path) -> None:
    # given an embedded gateway keeping jobs for ~4.3 s, sweeping every 0.2 s (long
    # enough for the test to see each job finish on a loaded machine before it is swept)
    retention_days = 5e-5
    settings = job_settings(
        tmp_path, jobs={"retention_days": retention_days, "retention_interval_s": 0.2}
    )
    gate = tmp_path / "gate"
    with gateway_at(settings) as gw:
        # and a job still running when a finished one expires (it runs until the gate opens)
        running = gw.submit(kind="test.gate", params={"path": str(gate)})
        tables, flipped, result_image = finished_jobs(gw)
        # then the finished jobs and their artifacts disappear on their own
        wait_for(lambda: gone(gw, tables) and gone(gw, flipped), timeout=12, interval=0.1)
        assert list(gw.container.storage.list(f"jobs/{tables}/")) == []
        assert gw.client.get(f"/v1/images/{result_image}", headers=gw.auth).status_code == 200
        # the running job is kept, and goes once it has finished and expired in turn
        assert gw.job(running["id"])["state"] == "running"
        gate.touch()
        assert gw.wait(running["id"], timeout=30)["state"] == "succeeded"
        wait_for(lambda: gone(gw, running["id"]), timeout=15, interval=0.1)


def test_retention_days_zero_keeps_jobs(tmp_path: Path) -> None:
    settings = job_settings(tmp_path, jobs={"retention_days": 0, "retention_interval_s": 0.1})
    with gateway_at(settings) as gw:
        job = gw.wait(gw.submit(kind="test.sleep", params={"seconds": 0})["id"])
        time.sleep(1.0)  # ten sweep intervals
        assert gw.job(job["id"])["state"] == "succeeded"


@pytest.mark.server
@pytest.mark.slow
def test_a_worker_process_deletes_expired_jobs(cluster: Cluster) -> None:
    # given a worker process keeping jobs for ~4.3 s (the gateway here never sweeps:
    # with a shared broker, workers do) — long enough to see the job succeed under load
    cluster.env.update(
        {"PIXELMILL_JOBS__RETENTION_DAYS": "5e-5", "PIXELMILL_JOBS__RETENTION_INTERVAL_S": "0.2"}
    )
    cluster.start_worker(queues="transform")
    gw = cluster.gateway
    # when a job with artifacts runs there
    job = gw.wait(gw.submit(kind="test.artifacts", inputs=[gw.upload()])["id"])
    assert job["state"] == "succeeded"
    # then the worker deletes it and its artifact objects soon after
    wait_for(lambda: gone(gw, job["id"]), timeout=30, interval=0.1)
    assert list(gw.container.storage.list(f"jobs/{job['id']}/")) == []
