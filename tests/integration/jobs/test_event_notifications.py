"""Job event streams wake on PostgreSQL notifications (LISTEN/NOTIFY), not by polling:
the real server, a trigger on job_events, a listener that survives losing its backend."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pixelmill.backends.metadata.changes import PgJobChanges, PollingChanges, make_job_changes
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.jobs import JobRepository
from tests.integration.jobs.conftest import Gateway, job_settings, migrated, open_gateway
from tests.jobs_helpers import make_job, sse_events, wait_for

pytestmark = pytest.mark.server


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Database]:
    yield from migrated(postgres_url)


def test_a_new_event_of_the_job_wakes_its_subscribers_and_only_theirs(
    pg: Database, postgres_url: str
) -> None:
    repo = JobRepository(pg)
    watched, other = make_job(repo), make_job(repo)
    changes = PgJobChanges(postgres_url)

    async def scenario() -> tuple[bool, bool, bool]:
        news, elsewhere = changes.subscribe(watched), changes.subscribe(other)
        await asyncio.to_thread(changes.listening.wait, 10)
        await news.wait(0.2)  # the (re)connect wake-up: "look now"
        await elsewhere.wait(0.2)
        # another connection (a worker) starts the watched job's task: an event commits
        await asyncio.to_thread(repo.start_task, watched, 0)
        woke = await news.wait(30)
        other_woke = await elsewhere.wait(0.5)
        # nothing new since: the next wait runs to its timeout
        again = await news.wait(0.5)
        news.close()
        elsewhere.close()
        return woke, other_woke, again

    try:
        woke, other_woke, again = asyncio.run(scenario())
    finally:
        changes.close()
    assert (woke, other_woke, again) == (True, False, False)


def test_the_listener_reconnects_after_losing_its_backend(pg: Database, postgres_url: str) -> None:
    repo = JobRepository(pg)
    job = make_job(repo)
    changes = PgJobChanges(postgres_url, reconnect_s=0.2)

    def kill_listener() -> int:
        with pg.engine.connect() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                    )
                ).all()
            )

    async def scenario() -> bool:
        news = changes.subscribe(job)
        await asyncio.to_thread(changes.listening.wait, 10)
        assert await asyncio.to_thread(kill_listener) == 1
        # it notices, reconnects and listens again; then a new event still wakes us
        await asyncio.to_thread(
            wait_for, lambda: not changes.listening.is_set() or None, timeout=10
        )
        await asyncio.to_thread(changes.listening.wait, 10)
        await news.wait(0.2)  # the reconnect wake-up
        await asyncio.to_thread(repo.start_task, job, 0)
        woke = await news.wait(30)
        news.close()
        return woke

    try:
        assert asyncio.run(scenario()) is True
    finally:
        changes.close()


def test_postgres_gets_notifications_unless_turned_off_and_other_databases_poll(
    postgres_url: str,
) -> None:
    pushed = make_job_changes(postgres_url)
    assert isinstance(pushed, PgJobChanges)
    pushed.close()
    assert isinstance(make_job_changes(postgres_url, notify=False), PollingChanges)
    assert isinstance(make_job_changes("sqlite:///x.db"), PollingChanges)


@pytest.fixture
def pg_gateway(tmp_path: Path, postgres_url: str) -> Iterator[Gateway]:
    """Embedded jobs on PostgreSQL, with a stream poll far longer than the test waits."""
    settings = job_settings(tmp_path, database={"url": postgres_url}, jobs={"events_poll_s": 120.0})
    yield from open_gateway(settings)


def test_an_event_stream_shows_a_running_job_live_without_polling(pg_gateway: Gateway) -> None:
    # a 10 s job that reports progress every 0.5 s; streams re-read the DB every 15 s
    # at most without news, so only notifications can bring its progress while it runs
    job = pg_gateway.submit(kind="test.sleep", params={"seconds": 10.0})
    events: list[tuple[str, dict[str, object]]] = []
    state_seen_live = None
    with pg_gateway.client.stream(
        "GET", f"/v1/jobs/{job['id']}/events", headers=pg_gateway.auth, timeout=60
    ) as resp:
        assert resp.status_code == 200
        for kind, data in sse_events(resp.iter_lines()):
            events.append((kind, data))
            if [k for k, _ in events].count("progress") == 3 and state_seen_live is None:
                # three progress steps in: the job is still running, so we got them
                # as they happened; then cancel it, which the stream shows too
                state_seen_live = pg_gateway.job(job["id"])["state"]
                assert state_seen_live == "running"
                cancel = f"/v1/jobs/{job['id']}/cancel"
                assert pg_gateway.client.post(cancel, headers=pg_gateway.auth).is_success
    assert state_seen_live == "running"
    states = [d["state"] for k, d in events if k == "state"]
    assert states[0] == "queued" and states[-1] == "cancelled"
