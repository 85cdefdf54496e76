"""One contract, every job store: in memory, SQLite and PostgreSQL keep jobs, tasks and
events the same way — guarded transitions (a redelivered task cannot finish twice, a job
completes exactly once, concurrent tasks lose no update), idempotency keys per owner,
owners that cannot see each other's jobs, events in order, publishing marks claimed
once, and retention that deletes each finished job once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pixelmill.backends.metadata.jobs import ACTIVE, Finish, JobStore, new_job_id
from pixelmill.errors import InvalidParameter, NotFound
from tests.jobs_helpers import OpenStore, job_row, make_job, open_job_store, run_concurrently

STORES = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.server)]


@pytest.fixture(params=STORES)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    url = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    elif request.param == "postgresql":
        url = request.getfixturevalue("postgres_module_url")
    opened = open_job_store(request.param, url)
    yield opened
    opened.close()


@pytest.fixture
def store(opened: OpenStore) -> JobStore:
    return opened.store


def state_events(store: JobStore, job_id: str) -> list[str]:
    return [e.data["state"] for e in store.events(job_id) if e.type == "state"]


def all_events(store: JobStore, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.data) for e in store.events(job_id)]


def job_fields(**over: Any) -> dict[str, Any]:
    """A job row with a short time limit and no retries (the contract's default job)."""
    return job_row(**{"time_limit_s": 1.0, "max_retries": 0, **over})


# -- create and read ----------------------------------------------------------------------


def test_a_created_job_reads_back_queued_with_its_tasks_and_event(store: JobStore) -> None:
    # given a job of two tasks submitted by key k1
    record, created = store.create(
        job_fields(params={"steps": [{"op": "resize", "scale": 2}]}, owner="k1", priority=3),
        [(0, None), (1, None)],
    )
    # then it reads back as submitted, queued, with two queued tasks and one event
    job = store.get(record.id)
    assert created and job.id == record.id
    assert (job.state, job.total, job.done, job.priority, job.owner) == ("queued", 2, 0, 3, "k1")
    assert job.params == {"steps": [{"op": "resize", "scale": 2}]}
    assert job.created_at.tzinfo is not None and job.finished_at is None
    assert [(t.idx, t.state, t.attempts) for t in store.tasks(job.id)] == [
        (0, "queued", 0),
        (1, "queued", 0),
    ]
    assert all_events(store, job.id) == [("state", {"state": "queued"})]
    assert store.count() == 1 and store.count(state="queued") == 1
    assert store.queued_tasks("transform") == 2 and store.queued_tasks("segment") == 0


def test_unknown_jobs_and_tasks_are_not_found(store: JobStore) -> None:
    job_id = make_job(store)
    with pytest.raises(NotFound):
        store.get("0" * 32)
    with pytest.raises(NotFound):
        store.task(job_id, 7)
    with pytest.raises(NotFound):
        store.cancel("0" * 32)
    assert store.start_task("0" * 32, 0) is None
    assert store.tasks("0" * 32) == [] and store.events("0" * 32) == []


def test_idempotency_key_is_unique_per_owner(store: JobStore) -> None:
    first = make_job(store, owner="k1", idempotency_key="abc")
    again, created = store.create(job_fields(owner="k1", idempotency_key="abc"), [(0, None)])
    assert (again.id, created) == (first, False)
    found = store.find_by_idempotency_key("k1", "abc")
    assert found is not None and found.id == first
    assert store.find_by_idempotency_key("k2", "abc") is None
    other = make_job(store, owner="k2", idempotency_key="abc")
    assert other != first and store.count() == 2


def test_create_refuses_missing_images_and_stores_nothing(
    store: JobStore, opened: OpenStore
) -> None:
    opened.add_image("img-a")
    with pytest.raises(InvalidParameter) as err:
        make_job(store, inputs=["img-a", "nope"], images=["img-a", "nope"])
    assert err.value.status == 422 and err.value.extra["missing"] == ["nope"]
    assert store.count() == 0
    # and with every image stored it is accepted, one task per input
    opened.add_image("img-b")
    job_id = make_job(store, inputs=["img-a", "img-b"], images=["img-a", "img-b"])
    assert [t.input for t in store.tasks(job_id)] == ["img-a", "img-b"]


def test_many_missing_images_are_all_counted_though_only_50_are_listed(
    store: JobStore, opened: OpenStore
) -> None:
    opened.add_image("img-a")
    gone = [f"gone-{i:02}" for i in range(60)]
    with pytest.raises(InvalidParameter) as err:
        make_job(store, inputs=["img-a", *gone], images=["img-a", *gone])
    # the list is cut, and the problem says so: how many in all, how many not listed
    assert err.value.extra["missing"] == gone[:50]
    assert err.value.extra["missing_count"] == 60
    assert err.value.detail.startswith("60 input image(s) do not exist")
    assert err.value.detail.endswith("and 10 more")
    assert store.count() == 0


def test_another_keys_job_is_not_found_like_an_unknown_one(store: JobStore) -> None:
    mine = make_job(store, owner="k1")
    theirs = make_job(store, owner="k2")
    anonymous = make_job(store)
    assert store.get(mine, owner="k1").id == mine
    with pytest.raises(NotFound):
        store.get(theirs, owner="k1")
    with pytest.raises(NotFound):
        store.cancel(theirs, owner="k1")
    assert [j.id for j in store.list_jobs(owner="k1")] == [mine]
    assert [j.id for j in store.list_jobs(owner="")] == [anonymous]
    assert store.get(theirs).state == "queued"  # the refused cancel changed nothing


def test_list_pages_newest_first_and_filters(store: JobStore) -> None:
    made = [make_job(store, kind="pipeline" if n % 2 else "analysis") for n in range(5)]
    store.cancel(made[0])
    # ids sort by creation time (to the millisecond), newest first
    newest_first = sorted(made, reverse=True)
    pages, after = [], None
    while page := store.list_jobs(limit=2, after=after):
        pages.append([j.id for j in page])
        after = page[-1].id
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    assert [j.id for j in store.list_jobs(state="cancelled")] == [made[0]]
    assert [j.id for j in store.list_jobs(kind="pipeline")] == sorted(made[1::2], reverse=True)
    assert store.count(state="queued") == 4


# -- transitions --------------------------------------------------------------------------


def test_a_redelivered_task_finishes_once(store: JobStore) -> None:
    # given a task that ran and succeeded
    job_id = make_job(store)
    assert store.start_task(job_id, 0) is not None
    assert store.finish_task(job_id, 0, Finish("succeeded", result_image="a")) is not None
    # when the same message is delivered again (at-least-once)
    again = store.start_task(job_id, 0)
    late = store.finish_task(job_id, 0, Finish("succeeded", result_image="b"))
    # then nothing changes: one result, one succeeded transition
    assert again is None and late is None
    assert store.task(job_id, 0).result_image == "a"
    assert state_events(store, job_id) == ["queued", "running", "succeeded"]


def test_a_crashed_run_can_start_again_and_counts_attempts(store: JobStore) -> None:
    job_id = make_job(store)
    first = store.start_task(job_id, 0)
    second = store.start_task(job_id, 0)  # the worker died; the broker redelivered
    assert first is not None and second is not None
    assert (first.task.attempts, second.task.attempts) == (1, 2)
    assert first.job.id == job_id and second.task.state == "running"
    assert store.get(job_id).state == "running" and store.get(job_id).started_at is not None
    assert state_events(store, job_id) == ["queued", "running"]


def test_a_retry_waits_queued_with_its_reason_then_runs_again(store: JobStore) -> None:
    job_id = make_job(store)
    store.start_task(job_id, 0)
    store.progress(job_id, 0, 0.5, "half way")
    assert (store.task(job_id, 0).progress, store.task(job_id, 0).message) == (0.5, "half way")
    # when the run fails in a way a retry may fix
    store.retry_later(job_id, 0, "ConnectionError: storage down")
    task = store.task(job_id, 0)
    assert (task.state, task.last_error) == ("queued", "ConnectionError: storage down")
    store.progress(job_id, 0, 0.9, "ignored")  # not running: no progress
    # then the next delivery is attempt 2, and every step was an event in order
    again = store.start_task(job_id, 0)
    assert again is not None and again.task.attempts == 2
    assert all_events(store, job_id)[2:] == [
        ("progress", {"index": 0, "progress": 0.5, "message": "half way"}),
        ("task", {"index": 0, "state": "retrying", "error": "ConnectionError: storage down"}),
        ("task", {"index": 0, "state": "running", "attempt": 2}),
    ]


def test_concurrent_tasks_complete_the_job_exactly_once(store: JobStore) -> None:
    # given a job of 24 tasks, all running
    job_id = make_job(store, tasks=24)
    for i in range(24):
        store.start_task(job_id, i)

    # when 8 threads finish them concurrently (some twice, as redeliveries would)
    def finish(indexes: list[int]) -> None:
        for i in indexes:
            store.finish_task(
                job_id,
                i,
                Finish("succeeded", result={"i": i}),
                aggregate=lambda job, tasks: [t.result["i"] for t in tasks],
            )

    errors = run_concurrently(
        *(partial(finish, [i for i in range(24) if i % 8 == n] * 2) for n in range(8))
    )
    # then every count is exact and the job succeeded once, with all results aggregated
    assert errors == []
    job = store.get(job_id)
    assert (job.state, job.succeeded, job.failed, job.cancelled) == ("succeeded", 24, 0, 0)
    assert job.result == list(range(24)) and job.finished_at is not None
    assert state_events(store, job_id).count("succeeded") == 1
    ids = [e.id for e in store.events(job_id)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_cancel_ends_every_task_and_a_late_result_changes_nothing(store: JobStore) -> None:
    # given a job with a running task, cancelled
    job_id = make_job(store, tasks=3)
    store.start_task(job_id, 0)
    job, changed = store.cancel(job_id)
    # then the job is final with every task counted, running ones included
    assert changed and (job.state, job.cancelled, job.succeeded) == ("cancelled", 3, 0)
    assert [store.task(job_id, i).state for i in range(3)] == ["cancelled"] * 3
    assert store.start_task(job_id, 1) is None
    # and the running task's late result (its worker did not check in time) is dropped:
    # nothing follows the final state event an SSE stream ends at
    assert store.finish_task(job_id, 0, Finish("succeeded", result_image="x")) is None
    assert store.get(job_id) == job
    assert store.cancel(job_id) == (job, False)
    assert all_events(store, job_id)[-1] == ("state", {"state": "cancelled"})
    assert state_events(store, job_id) == ["queued", "running", "cancelled"]


def test_cancel_tells_each_unfinished_task_it_was_cancelled(store: JobStore) -> None:
    # given a job of three tasks: one succeeded, one running, one still queued
    job_id = make_job(store, tasks=3)
    for i in range(2):
        store.start_task(job_id, i)
    store.finish_task(job_id, 0, Finish("succeeded"))
    before = len(store.events(job_id))
    # when it is cancelled
    store.cancel(job_id)
    # then the running and the queued task each get a cancelled event, the finished
    # one none, and the job's cancelled state event still comes last
    assert all_events(store, job_id)[before:] == [
        ("task", {"index": 1, "state": "cancelled"}),
        ("task", {"index": 2, "state": "cancelled"}),
        ("state", {"state": "cancelled"}),
    ]
    assert store.get(job_id).cancelled == 2


def test_a_running_task_of_a_cancelled_job_is_not_left_running(store: JobStore) -> None:
    # given a running task whose run raised (a retry is due) or whose worker was
    # killed, and its job cancelled meanwhile
    job_id = make_job(store, tasks=2)
    store.start_task(job_id, 0)
    store.cancel(job_id)
    store.retry_later(job_id, 0, "OSError: boom")
    # when the broker delivers the task again, it is dropped (the job is over)
    assert store.start_task(job_id, 0) is None
    # then no task of the final job is still active, and its counts add up
    job = store.get(job_id)
    assert [store.task(job_id, i).state for i in range(2)] == ["cancelled", "cancelled"]
    assert job.succeeded + job.failed + job.cancelled == job.total


def test_a_failed_task_fails_the_job_with_a_summary(store: JobStore) -> None:
    job_id = make_job(store, tasks=2)
    for i in range(2):
        store.start_task(job_id, i)
    store.finish_task(job_id, 0, Finish("succeeded"))
    store.finish_task(job_id, 1, Finish("failed", error="bad pixels"))
    job = store.get(job_id)
    assert job.state == "failed"
    assert job.error == "1 of 2 tasks failed; first (task 1): bad pixels"
    assert store.cancel(job_id) == (job, False)


def test_a_dead_lettered_task_that_never_ran_fails_its_job(store: JobStore) -> None:
    job_id = make_job(store)
    done = store.finish_task(job_id, 0, Finish("failed", error="dead-lettered", from_states=ACTIVE))
    assert done is not None and done.state == "failed"
    assert state_events(store, job_id) == ["queued", "failed"]
    # but a queued task cannot succeed without having run
    other = make_job(store)
    assert store.finish_task(other, 0, Finish("succeeded", from_states=ACTIVE)) is None
    assert store.get(other).state == "queued"


def test_a_one_task_job_completes_with_its_result_in_one_step(store: JobStore) -> None:
    # given a one-task job whose task started (the worker passes what start returned;
    # PostgreSQL then records the outcome and completes the job in one statement)
    job_id = make_job(store)
    started = store.start_task(job_id, 0)
    assert started is not None
    # when it succeeds — and the same run is reported once more (a redelivery)
    done = store.finish_task(
        job_id,
        0,
        Finish("succeeded", result_image="img", result={"n": 1}),
        aggregate=lambda job, tasks: [t.result for t in tasks],
        started=started,
    )
    again = store.finish_task(job_id, 0, Finish("succeeded", result_image="x"), started=started)
    # then the job succeeded once, with the aggregated result, and the task event comes
    # before the job's final state event (an SSE stream ends at the final state)
    assert done is not None and again is None
    job = store.get(job_id)
    assert (job.state, job.succeeded, job.result, job.finished_at is not None) == (
        "succeeded",
        1,
        [{"n": 1}],
        True,
    )
    assert store.task(job_id, 0).result_image == "img"
    assert store.task(job_id, 0).progress == 1.0
    assert all_events(store, job_id) == [
        ("state", {"state": "queued"}),
        ("state", {"state": "running"}),
        ("task", {"index": 0, "state": "succeeded", "result_image": "img"}),
        ("state", {"state": "succeeded"}),
    ]


def test_a_one_task_job_that_fails_says_why(store: JobStore) -> None:
    job_id = make_job(store)
    started = store.start_task(job_id, 0)
    again = store.start_task(job_id, 0)  # a redelivery: attempt 2, reported as news
    assert started is not None and again is not None
    store.finish_task(job_id, 0, Finish("failed", error="bad pixels"), started=again)
    job = store.get(job_id)
    assert (job.state, job.failed) == ("failed", 1)
    assert job.error == "1 of 1 tasks failed; first (task 0): bad pixels"
    assert all_events(store, job_id)[2:] == [
        ("task", {"index": 0, "state": "running", "attempt": 2}),
        ("task", {"index": 0, "state": "failed", "error": "bad pixels"}),
        ("state", {"state": "failed", "error": job.error}),
    ]


def test_a_one_task_job_cancelled_while_running_drops_a_late_result(
    store: JobStore,
) -> None:
    job_id = make_job(store)
    started = store.start_task(job_id, 0)
    assert started is not None
    store.cancel(job_id)
    late = store.finish_task(job_id, 0, Finish("succeeded", result_image="x"), started=started)
    job = store.get(job_id)
    assert late is None and store.task(job_id, 0).result_image is None
    assert (job.state, job.cancelled, job.succeeded, job.result) == ("cancelled", 1, 0, None)
    assert state_events(store, job_id) == ["queued", "running", "cancelled"]
    assert all_events(store, job_id)[-1] == ("state", {"state": "cancelled"})


def test_concurrent_duplicate_finishes_of_a_one_task_job_count_once(store: JobStore) -> None:
    # given 20 one-task jobs, each started
    started = []
    for _ in range(20):
        job_id = make_job(store)
        run = store.start_task(job_id, 0)
        assert run is not None
        started.append(run)
    # when 4 threads report every outcome at once (redeliveries racing each other)
    barrier = threading.Barrier(4)

    def finish() -> None:
        barrier.wait(10)
        for run in started:
            store.finish_task(run.job.id, 0, Finish("succeeded"), started=run)

    errors = run_concurrently(*[finish] * 4)
    # then each job succeeded exactly once, counted once
    assert errors == []
    for run in started:
        job = store.get(run.job.id)
        assert (job.state, job.succeeded) == ("succeeded", 1)
        assert state_events(store, run.job.id).count("succeeded") == 1


def test_many_jobs_submitted_run_and_finished_at_once_each_get_their_own_answer(
    store: JobStore,
) -> None:
    # given 8 threads that each submit, start and finish 10 one-task jobs at the same
    # time (a busy gateway and worker: on PostgreSQL their statements share commits),
    # and a ninth whose submits name an image that does not exist
    barrier = threading.Barrier(9)
    finished: list[str] = []
    refused: list[int] = []

    def lifecycle() -> None:
        barrier.wait(10)
        for _ in range(10):
            job_id = make_job(store)
            run = store.start_task(job_id, 0)
            assert run is not None and run.job.id == job_id and run.task.attempts == 1
            done = store.finish_task(job_id, 0, Finish("succeeded", result={"n": 1}), started=run)
            assert done is not None and done.id == job_id and done.state == "succeeded"
            finished.append(job_id)

    def refused_submits() -> None:
        barrier.wait(10)
        for _ in range(10):
            with pytest.raises(InvalidParameter) as err:
                make_job(store, images=["nope"])
            refused.append(err.value.status)

    errors = run_concurrently(*[lifecycle] * 8, refused_submits)
    # then every job ran once with its own events, and only the bad submits were refused
    assert errors == []
    assert len(set(finished)) == 80 and refused == [422] * 10
    for job_id in finished:
        job = store.get(job_id)
        assert (job.state, job.succeeded) == ("succeeded", 1)
        assert store.task(job_id, 0).result == {"n": 1}
        assert state_events(store, job_id) == ["queued", "running", "succeeded"]


def test_events_page_by_id(store: JobStore) -> None:
    job_id = make_job(store)
    store.start_task(job_id, 0)
    store.progress(job_id, 0, 0.25, None)
    store.finish_task(job_id, 0, Finish("succeeded"))
    events = store.events(job_id)
    assert [e.type for e in events] == ["state", "state", "progress", "task", "state"]
    assert store.events(job_id, after=events[1].id, limit=2) == events[2:4]
    assert store.events(job_id, after=events[-1].id) == []
    assert all(e.at.tzinfo is not None and e.job_id == job_id for e in events)


# -- publishing ---------------------------------------------------------------------------


def test_unpublished_tasks_are_claimed_once(store: JobStore) -> None:
    job_id = make_job(store, tasks=5)
    claims = [store.claim_unpublished(older_than_s=-1.0) for _ in range(2)]
    assert [len(c) for c in claims] == [5, 0]
    store.unmark_published(claims[0][:2])
    assert len(store.claim_unpublished(older_than_s=-1.0)) == 2
    assert store.queued_tasks("transform") == 5
    assert {r.job_id for r in store.unfinished()} == {job_id}


def test_published_tasks_are_not_claimed_and_recent_ones_wait(store: JobStore) -> None:
    marked = make_job(store, tasks=3)
    batched = make_job(store, tasks=2, priority=4)
    fresh = make_job(store)
    store.mark_published(marked, [0, 2])
    store.mark_jobs_published([batched])
    assert store.claim_unpublished(older_than_s=3600) == []  # nothing is an hour old
    claimed = store.claim_unpublished(older_than_s=-1.0)
    assert {(r.job_id, r.idx) for r in claimed} == {(marked, 1), (fresh, 0)}
    assert all(t.published_at is not None for t in store.tasks(batched))
    refs = {(r.job_id, r.idx): r for r in store.unfinished()}
    assert len(refs) == 6 and refs[(batched, 1)].priority == 4
    assert refs[(batched, 1)].queue == "transform"


def test_finished_tasks_are_not_unfinished(store: JobStore) -> None:
    job_id = make_job(store, tasks=2)
    store.start_task(job_id, 0)
    store.finish_task(job_id, 0, Finish("succeeded"))
    assert [(r.job_id, r.idx) for r in store.unfinished()] == [(job_id, 1)]
    assert store.queued_tasks("transform") == 1


# -- retention ----------------------------------------------------------------------------


def finished(store: JobStore, state: str, *, artifact: bool = False) -> str:
    """A job that ended in ``state``; with ``artifact``, its task recorded one."""
    job_id = make_job(store, owner="k1", idempotency_key=f"key-{new_job_id()}")
    if state == "cancelled":
        store.cancel(job_id)
        return job_id
    store.start_task(job_id, 0)
    key = f"jobs/{job_id}/tasks/000000/cells.json"
    arts = [{"name": "cells", "key": key, "kind": "json", "size": 2}] if artifact else None
    error = "boom" if state == "failed" else None
    store.finish_task(job_id, 0, Finish(state, artifacts=arts, error=error))  # type: ignore[arg-type]
    return job_id


def test_only_jobs_that_finished_before_the_cutoff_are_purged(store: JobStore) -> None:
    # given finished jobs of every final state, then (after the cutoff) active ones
    old = {s: finished(store, s, artifact=s == "succeeded") for s in ("succeeded", "failed")}
    old["cancelled"] = finished(store, "cancelled")
    cutoff = datetime.now(UTC) + timedelta(microseconds=1)
    queued = make_job(store, owner="k1")
    running = make_job(store, tasks=2, owner="k1")
    store.start_task(running, 0)
    store.finish_task(running, 0, Finish("succeeded"))
    assert store.count_finished(before=cutoff) == 3
    assert store.count_finished(before=cutoff - timedelta(days=1)) == 0
    # when they are purged
    purged = store.purge_finished(before=cutoff, limit=100)
    # then exactly the finished ones are gone, with their artifact keys
    assert {p.id for p in purged} == set(old.values())
    keys = {p.id: p.artifact_keys for p in purged}
    assert keys[old["succeeded"]] == [f"jobs/{old['succeeded']}/tasks/000000/cells.json"]
    assert keys[old["failed"]] == keys[old["cancelled"]] == []
    for job_id in old.values():
        with pytest.raises(NotFound):
            store.get(job_id)
        assert store.tasks(job_id) == [] and store.events(job_id) == []
    assert store.get(running).state == "running" and store.get(queued).state == "queued"
    assert store.purge_finished(before=datetime.now(UTC) + timedelta(days=1), limit=100) == []


def test_purge_takes_the_oldest_first_and_frees_idempotency_keys(store: JobStore) -> None:
    first, second, third = (finished(store, "succeeded") for _ in range(3))
    key = store.get(first).idempotency_key
    assert key is not None
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert [p.id for p in store.purge_finished(before=later, limit=2)] == [first, second]
    assert store.find_by_idempotency_key("k1", key) is None
    assert [j.id for j in store.list_jobs()] == [third]


def test_concurrent_sweepers_delete_each_job_once(store: JobStore) -> None:
    # given 30 finished jobs and four sweepers taking batches of 4 at the same time
    expired = {finished(store, "succeeded", artifact=True) for _ in range(30)}
    seen: list[str] = []
    later = datetime.now(UTC) + timedelta(seconds=1)

    def sweep() -> None:
        while batch := store.purge_finished(before=later, limit=4):
            seen.extend(p.id for p in batch)

    errors = run_concurrently(*[sweep] * 4)
    # then every job was deleted by exactly one of them, and none is left
    assert errors == []
    assert sorted(seen) == sorted(expired)
    assert store.count_finished(before=later) == 0 and store.count() == 0


def test_queue_stats_count_queued_and_running_tasks_with_the_oldest_per_queue(
    store: JobStore,
) -> None:
    # given a job of three tasks on transform (one started) and one of two on segment
    before = datetime.now(UTC)
    first = make_job(store, tasks=3)
    store.start_task(first, 0)
    make_job(store, tasks=2, queue="segment")
    # then the stats count each queue's queued and running tasks
    rows = {(q, s): (n, oldest) for q, s, n, oldest in store.queue_stats()}
    assert {key: n for key, (n, _) in rows.items()} == {
        ("transform", "queued"): 2,
        ("transform", "running"): 1,
        ("segment", "queued"): 2,
    }
    # and the oldest queued task's creation time, aware and recent
    oldest = rows[("transform", "queued")][1]
    assert oldest is not None and before - timedelta(seconds=5) <= oldest <= datetime.now(UTC)
    # and finished tasks leave the stats
    store.finish_task(first, 0, Finish("succeeded", result_image="x"))
    assert ("transform", "running") not in {(q, s) for q, s, _, _ in store.queue_stats()}
