"""The job tables on SQLite and PostgreSQL: same code, same migrations, same guarded
transitions — a redelivered task cannot finish twice, concurrent tasks cannot lose an
update, a job completes exactly once."""

from __future__ import annotations

import threading
from functools import partial

import pytest
import sqlalchemy as sa

from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.jobs import Finish, JobRepository, new_job_id
from pixelmill.backends.metadata.tables_jobs import job_events
from tests.jobs_helpers import make_job, run_concurrently


def state_events(db: Database, job_id: str) -> list[str]:
    with db.begin() as conn:
        rows = conn.execute(
            sa.select(job_events.c.data)
            .where(job_events.c.job_id == job_id, job_events.c.type == "state")
            .order_by(job_events.c.id)
        ).scalars()
        return [r["state"] for r in rows]


def test_a_redelivered_task_finishes_once(db: Database) -> None:
    # given a task that ran and succeeded
    repo = JobRepository(db)
    job_id = make_job(repo)
    assert repo.start_task(job_id, 0) is not None
    assert repo.finish_task(job_id, 0, Finish("succeeded", result_image="a")) is not None
    # when the same message is delivered again (at-least-once)
    again = repo.start_task(job_id, 0)
    late = repo.finish_task(job_id, 0, Finish("succeeded", result_image="b"))
    # then nothing changes: one result, one succeeded transition
    assert again is None and late is None
    assert repo.task(job_id, 0).result_image == "a"
    assert state_events(db, job_id) == ["queued", "running", "succeeded"]


def test_a_crashed_run_can_start_again_and_counts_attempts(db: Database) -> None:
    repo = JobRepository(db)
    job_id = make_job(repo)
    first = repo.start_task(job_id, 0)
    second = repo.start_task(job_id, 0)  # the worker died; the broker redelivered
    assert first is not None and second is not None
    assert (first.task.attempts, second.task.attempts) == (1, 2)
    assert state_events(db, job_id) == ["queued", "running"]


def test_concurrent_tasks_complete_the_job_exactly_once(db: Database) -> None:
    # given a job of 24 tasks, all running
    repo = JobRepository(db)
    job_id = make_job(repo, tasks=24)
    for i in range(24):
        repo.start_task(job_id, i)

    # when 8 threads finish them concurrently (some twice, as redeliveries would)
    def finish(indexes: list[int]) -> None:
        for i in indexes:
            repo.finish_task(job_id, i, Finish("succeeded", result={"i": i}))

    errors = run_concurrently(
        *(partial(finish, [i for i in range(24) if i % 8 == n] * 2) for n in range(8))
    )
    # then every count is exact and the job succeeded once, with all results aggregated
    assert errors == []
    job = repo.get(job_id)
    assert (job.state, job.succeeded, job.failed, job.cancelled) == ("succeeded", 24, 0, 0)
    assert state_events(db, job_id).count("succeeded") == 1


def test_cancel_drops_queued_tasks_and_a_late_result_is_recorded_as_cancelled(
    db: Database,
) -> None:
    repo = JobRepository(db)
    job_id = make_job(repo, tasks=3)
    repo.start_task(job_id, 0)
    job, changed = repo.cancel(job_id)
    assert changed and job.state == "cancelled" and job.cancelled == 2
    assert repo.start_task(job_id, 1) is None
    repo.finish_task(job_id, 0, Finish("succeeded", result_image="x"))
    job = repo.get(job_id)
    assert (job.state, job.cancelled, job.succeeded) == ("cancelled", 3, 0)
    assert repo.cancel(job_id) == (job, False)
    assert state_events(db, job_id) == ["queued", "running", "cancelled"]


def test_a_failed_task_fails_the_job_with_a_summary(db: Database) -> None:
    repo = JobRepository(db)
    job_id = make_job(repo, tasks=2)
    for i in range(2):
        repo.start_task(job_id, i)
    repo.finish_task(job_id, 0, Finish("succeeded"))
    repo.finish_task(job_id, 1, Finish("failed", error="bad pixels"))
    job = repo.get(job_id)
    assert job.state == "failed"
    assert job.error == "1 of 2 tasks failed; first (task 1): bad pixels"


def test_unpublished_tasks_are_claimed_once(db: Database) -> None:
    repo = JobRepository(db)
    job_id = make_job(repo, tasks=5)
    claims = [repo.claim_unpublished(older_than_s=-1.0) for _ in range(2)]
    assert [len(c) for c in claims] == [5, 0]
    repo.unmark_published(claims[0][:2])
    assert len(repo.claim_unpublished(older_than_s=-1.0)) == 2
    assert repo.queued_tasks("transform") == 5
    assert {r.job_id for r in repo.unfinished()} == {job_id}


def test_idempotency_key_is_unique_per_owner(db: Database) -> None:
    repo = JobRepository(db)
    first = make_job(repo, owner="k1", idempotency_key="abc")
    again, created = repo.create(
        {
            "id": new_job_id(),
            "kind": "pipeline",
            "queue": "transform",
            "priority": 0,
            "params": {},
            "inputs": [],
            "owner": "k1",
            "idempotency_key": "abc",
            "time_limit_s": 1.0,
            "max_retries": 0,
        },
        [(0, None)],
    )
    assert (again.id, created) == (first, False)
    other = make_job(repo, owner="k2", idempotency_key="abc")
    assert other != first


def test_the_migration_goes_down_and_up_again(db: Database) -> None:
    from alembic import command
    from alembic.config import Config

    from pixelmill.backends.metadata import database

    cfg = Config()
    cfg.set_main_option("script_location", str(database._MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001_images_keys")
    assert "jobs" not in sa.inspect(db.engine).get_table_names()
    db.upgrade()
    assert {"jobs", "job_tasks", "job_events"} <= set(sa.inspect(db.engine).get_table_names())


def all_events(db: Database, job_id: str) -> list[tuple[str, dict[str, object]]]:
    with db.begin() as conn:
        rows = conn.execute(
            sa.select(job_events.c.type, job_events.c.data)
            .where(job_events.c.job_id == job_id)
            .order_by(job_events.c.id)
        ).all()
    return [(r.type, r.data) for r in rows]


def test_a_one_task_job_completes_with_its_result_in_one_step(db: Database) -> None:
    # given a one-task job whose task started (the worker passes what start returned;
    # PostgreSQL then records the outcome and completes the job in one statement)
    repo = JobRepository(db)
    job_id = make_job(repo)
    started = repo.start_task(job_id, 0)
    assert started is not None
    # when it succeeds — and the same run is reported once more (a redelivery)
    done = repo.finish_task(
        job_id,
        0,
        Finish("succeeded", result_image="img", result={"n": 1}),
        aggregate=lambda job, tasks: [t.result for t in tasks],
        started=started,
    )
    again = repo.finish_task(job_id, 0, Finish("succeeded", result_image="x"), started=started)
    # then the job succeeded once, with the aggregated result, and the task event comes
    # before the job's final state event (an SSE stream ends at the final state)
    assert done is not None and again is None
    job = repo.get(job_id)
    assert (job.state, job.succeeded, job.result, job.finished_at is not None) == (
        "succeeded",
        1,
        [{"n": 1}],
        True,
    )
    assert repo.task(job_id, 0).result_image == "img"
    assert all_events(db, job_id) == [
        ("state", {"state": "queued"}),
        ("state", {"state": "running"}),
        ("task", {"index": 0, "state": "succeeded", "result_image": "img"}),
        ("state", {"state": "succeeded"}),
    ]


def test_a_one_task_job_that_fails_says_why(db: Database) -> None:
    repo = JobRepository(db)
    job_id = make_job(repo)
    started = repo.start_task(job_id, 0)
    again = repo.start_task(job_id, 0)  # a redelivery: attempt 2, reported as news
    assert started is not None and again is not None
    repo.finish_task(job_id, 0, Finish("failed", error="bad pixels"), started=again)
    job = repo.get(job_id)
    assert (job.state, job.failed) == ("failed", 1)
    assert job.error == "1 of 1 tasks failed; first (task 0): bad pixels"
    assert all_events(db, job_id)[2:] == [
        ("task", {"index": 0, "state": "running", "attempt": 2}),
        ("task", {"index": 0, "state": "failed", "error": "bad pixels"}),
        ("state", {"state": "failed", "error": job.error}),
    ]


def test_a_one_task_job_cancelled_while_running_records_a_late_result_as_cancelled(
    db: Database,
) -> None:
    repo = JobRepository(db)
    job_id = make_job(repo)
    started = repo.start_task(job_id, 0)
    assert started is not None
    repo.cancel(job_id)
    repo.finish_task(job_id, 0, Finish("succeeded", result_image="x"), started=started)
    job = repo.get(job_id)
    assert (job.state, job.cancelled, job.succeeded, job.result) == ("cancelled", 1, 0, None)
    assert state_events(db, job_id) == ["queued", "running", "cancelled"]


def test_create_refuses_missing_images_and_stores_nothing(db: Database) -> None:
    from pixelmill.errors import InvalidParameter

    repo = JobRepository(db)
    with pytest.raises(InvalidParameter) as err:
        make_job(repo, inputs=["nope"], images=["nope"], time_limit_s=1.0, max_retries=0)
    assert err.value.status == 422 and "nope" in str(err.value.extra)
    assert repo.count() == 0


def test_concurrent_duplicate_finishes_of_a_one_task_job_count_once(db: Database) -> None:
    # given 20 one-task jobs, each started
    repo = JobRepository(db)
    started = []
    for _ in range(20):
        job_id = make_job(repo)
        run = repo.start_task(job_id, 0)
        assert run is not None
        started.append(run)
    # when 4 threads report every outcome at once (redeliveries racing each other)
    barrier = threading.Barrier(4)

    def finish() -> None:
        barrier.wait(10)
        for run in started:
            repo.finish_task(run.job.id, 0, Finish("succeeded"), started=run)

    errors = run_concurrently(*[finish] * 4)
    # then each job succeeded exactly once, counted once
    assert errors == []
    for run in started:
        job = repo.get(run.job.id)
        assert (job.state, job.succeeded) == ("succeeded", 1)
        assert state_events(db, run.job.id).count("succeeded") == 1
