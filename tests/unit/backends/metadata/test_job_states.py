"""The state machine table says what the stores do: for every job and task state pair,
the move the table allows is exactly the move the store makes — no more, no less."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pixelmill.backends.metadata.jobs import Finish, JobStore
from pixelmill.backends.metadata.jobs.states import (
    ACTIVE,
    STATES,
    TERMINAL,
    Kind,
    State,
    can_move,
    is_terminal,
    job_outcome,
    sources,
)
from tests.jobs_helpers import make_job, open_job_store

PAIRS = [(old, new) for old in STATES for new in STATES]


@pytest.fixture(
    scope="module",
    params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.server)],
)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JobStore]:
    """One store per module: every case makes jobs of its own."""
    url = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('states') / 'jobs.db'}"
    elif request.param == "postgresql":
        url = request.getfixturevalue("postgres_module_url")
    opened = open_job_store(request.param, url)
    yield opened.store
    opened.close()


def test_every_state_is_active_or_terminal_and_terminal_states_never_move() -> None:
    assert set(ACTIVE) | set(TERMINAL) == set(STATES)
    assert not set(ACTIVE) & set(TERMINAL)
    for kind in ("job", "task"):
        for old in TERMINAL:
            assert not any(can_move(kind, old, new) for new in STATES)
        assert all(is_terminal(s) == (s in TERMINAL) for s in STATES)


def test_sources_are_the_states_that_may_move_there() -> None:
    for kind in ("job", "task"):
        for new in STATES:
            assert sources(kind, new) == tuple(s for s in STATES if can_move(kind, s, new))
    assert sources("task", "running") == ("queued", "running")
    assert not can_move("job", "unknown", "running")


def test_a_job_succeeds_only_when_no_task_failed_or_was_cancelled() -> None:
    assert job_outcome(0, 0) == "succeeded"
    assert job_outcome(1, 0) == job_outcome(0, 1) == "failed"


def _task_in(store: JobStore, state: State) -> str:
    """A two-task job whose task 0 is in ``state`` (task 1 stays queued, so the job
    stays active whatever task 0 did)."""
    job_id = make_job(store, tasks=2)
    if state != "queued":
        store.start_task(job_id, 0)
    if is_terminal(state):
        store.finish_task(job_id, 0, Finish(state))  # type: ignore[arg-type]
    return job_id


def _job_in(store: JobStore, state: State) -> str:
    """A one-task job in ``state``."""
    job_id = make_job(store)
    if state == "cancelled":
        store.cancel(job_id)
    elif state != "queued":
        store.start_task(job_id, 0)
        if is_terminal(state):
            store.finish_task(job_id, 0, Finish(state))  # type: ignore[arg-type]
    return job_id


def _attempt(store: JobStore, kind: Kind, job_id: str, new: State) -> None:
    """Everything a caller can do to move the job (or its task 0) to ``new``, with the
    loosest guards a caller may ask for."""
    if new == "running":
        store.start_task(job_id, 0)
    elif new == "queued":
        store.retry_later(job_id, 0, "try again")
    elif kind == "job" and new == "cancelled":
        store.cancel(job_id)
    else:
        store.finish_task(job_id, 0, Finish(new, from_states=STATES))  # type: ignore[arg-type]


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_the_table_says_which_task_moves_the_store_makes(
    store: JobStore, old: State, new: State
) -> None:
    # given a task in `old`
    job_id = _task_in(store, old)
    before = store.task(job_id, 0)
    assert before.state == old
    # when a caller tries to move it to `new`
    _attempt(store, "task", job_id, new)
    # then it moved exactly when the table allows it (a restart counts an attempt)
    after = store.task(job_id, 0)
    moved = after.state == new and (old != new or after.attempts != before.attempts)
    assert moved == can_move("task", old, new)
    if not moved:
        assert after == before


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_the_table_says_which_job_moves_the_store_makes(
    store: JobStore, old: State, new: State
) -> None:
    # given a job in `old`
    job_id = _job_in(store, old)
    assert store.get(job_id).state == old
    last = store.events(job_id)[-1].id
    # when a caller tries to move it to `new`
    _attempt(store, "job", job_id, new)
    # then it moved (a new state event) exactly when the table allows it
    after = store.get(job_id)
    changes = [e.data["state"] for e in store.events(job_id, after=last) if e.type == "state"]
    moved = after.state == new and changes == [new]
    assert moved == can_move("job", old, new)
    if not moved:
        assert changes == [] and after.state == old
