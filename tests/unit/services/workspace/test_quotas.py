"""How a user's limits are resolved (site defaults, their override, admins, 0 as
unlimited), the training-minutes period, and the meter that stops a run, over a real
SQLite database in memory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.quotas import QuotaRepository
from pixelmill.backends.metadata.users import UserRepository
from pixelmill.errors import EpochQuotaExceeded, JobQuotaExceeded, QuotaExceeded
from pixelmill.services.workspace.quotas import Limits, Quotas, month_start
from pixelmill.settings import QuotaSettings


@pytest.fixture
def db() -> Iterator[Database]:
    database = Database("sqlite://")
    database.upgrade()
    yield database
    database.dispose()


def quotas(db: Database, clock: datetime | None = None, **settings: object) -> Quotas:
    return Quotas(
        repo=QuotaRepository(db),
        users=UserRepository(db),
        events=EventLog(db),
        settings=QuotaSettings(**settings),  # type: ignore[arg-type]
        clock=(lambda: clock) if clock else (lambda: datetime.now(UTC)),
    )


def user(db: Database, name: str, role: str = "member") -> str:
    return UserRepository(db).create(name, site_role=role).id  # type: ignore[arg-type]


def test_a_member_gets_the_site_defaults_and_0_means_unlimited(db: Database) -> None:
    q = quotas(db, stored_bytes=1000, concurrent_jobs=0, training_minutes=60, max_epochs=5)

    assert q.limits(user(db, "bob")) == Limits(1000, None, 60, 5)


def test_an_override_replaces_a_default_and_null_falls_back_to_it(db: Database) -> None:
    q, bob = quotas(db, stored_bytes=1000, max_epochs=5), user(db, "bob")

    q.set(Actor(), bob, {"stored_bytes": 0, "concurrent_jobs": 7})

    limits = q.limits(bob)  # this process sees the change at once
    assert (limits.stored_bytes, limits.concurrent_jobs, limits.max_epochs) == (None, 7, 5)
    assert [e.action for e in EventLog(db).list(security=True)] == ["quota.set"]


def test_admins_are_exempt_from_the_defaults_but_not_from_their_own_override(
    db: Database,
) -> None:
    root = user(db, "root", "admin")
    exempt, strict = quotas(db), quotas(db, admins_exempt=False)

    assert exempt.limits(root) == Limits()
    assert strict.limits(root) == strict.limits(user(db, "bob"))
    exempt.set(Actor(), root, {"concurrent_jobs": 3})
    assert exempt.limits(root) == Limits(concurrent_jobs=3)


def test_nothing_is_enforced_when_quotas_are_off_or_for_no_user(db: Database) -> None:
    assert quotas(db, enabled=False).limits(user(db, "bob")) == Limits()
    assert quotas(db).limits("") == Limits() == quotas(db).limits("no-such-user")


def test_the_training_period_is_the_calendar_month_in_utc() -> None:
    assert month_start(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == datetime(
        2026, 12, 1, tzinfo=UTC
    )


def test_last_months_training_minutes_do_not_count_this_month(db: Database) -> None:
    bob = user(db, "bob")
    QuotaRepository(db).record_run("job-1", bob, 600.0)
    now = datetime.now(UTC)
    next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 2, tzinfo=UTC)

    assert quotas(db).report(bob)["usage"]["training_minutes"] == 10
    report = quotas(db, clock=next_month).report(bob)
    assert report["usage"]["training_minutes"] == 0
    assert report["usage"]["training_period"]["start"] == month_start(next_month).isoformat()


def test_submits_are_refused_at_each_limit_with_its_own_status(db: Database) -> None:
    q, bob = quotas(db, concurrent_jobs=0, training_minutes=1, max_epochs=5), user(db, "bob")
    q.check_training(bob, 5)
    with pytest.raises(EpochQuotaExceeded) as epochs:
        q.check_training(bob, 6)
    QuotaRepository(db).record_run("job-1", bob, 60.0)
    with pytest.raises(QuotaExceeded) as minutes:
        q.check_training(bob, 1)
    q.admit_job(bob)  # 0: unlimited
    q.set(Actor(), bob, {"concurrent_jobs": 0})
    q.admit_job(bob)

    assert (epochs.value.status, minutes.value.status) == (422, 403)
    assert JobQuotaExceeded.status == 429 and JobQuotaExceeded.slug == QuotaExceeded.slug
    denials = [
        e.after["quota"] for e in EventLog(db).list(security=True) if e.action == "denied.quota"
    ]
    assert sorted(denials) == ["max_epochs", "training_minutes"]


def test_a_meter_stops_a_run_once_the_users_other_runs_used_the_minutes(db: Database) -> None:
    q, bob = quotas(db, training_minutes=1), user(db, "bob")
    meter = q.training_meter(bob, "job-2")
    assert not meter.exhausted()

    QuotaRepository(db).record_run("job-1", bob, 60.0)  # another run of his, meanwhile
    fresh = q.training_meter(bob, "job-2")  # syncs at its first poll

    assert fresh.exhausted() and fresh.exhausted()  # and stays so
    assert fresh.error().extra["quota"] == "training_minutes"
    fresh.close()
    assert QuotaRepository(db).run_seconds("job-2") > 0


def test_the_jobs_count_adds_own_submits_and_counts_afresh_at_the_limit(db: Database) -> None:
    # a process reuses its count between submits; a submit it would refuse is counted
    # afresh first, so jobs that finished meanwhile free their places at once
    from pixelmill.backends.metadata.jobs import JobRepository
    from tests.jobs_helpers import make_job

    q, bob = quotas(db, concurrent_jobs=3, jobs_count_s=3600), user(db, "bob")
    jobs = JobRepository(db)
    running = []
    for _ in range(3):
        q.admit_job(bob)
        running.append(make_job(jobs, owner=bob))
    with pytest.raises(JobQuotaExceeded) as full:
        q.admit_job(bob)
    assert full.value.extra["used"] == 3
    jobs.cancel(running[0])  # one ends: the next submit is counted afresh and admitted
    q.admit_job(bob)
