"""Quotas in the metadata DB, the same on SQLite (memory, file) and PostgreSQL: overrides,
usage (stored bytes per kind, active jobs, training seconds this period) and the
stored-bytes check that holds under concurrent inserts."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.jobs import JobRepository
from pixelmill.backends.metadata.models import DatasetRepository, ModelRepository
from pixelmill.backends.metadata.quotas import QuotaRepository
from pixelmill.backends.metadata.users import UserRepository
from pixelmill.errors import QuotaExceeded
from tests.contract.test_metadata_contract import image
from tests.contract.test_ml_ownership_contract import _dataset
from tests.jobs_helpers import make_job, run_concurrently
from tests.ml_helpers import add_model_version


def _user(db: Database) -> str:
    return UserRepository(db).create(f"u-{uuid.uuid4().hex[:8]}").id


def _image(n: int, owner: str, size: int) -> dict[str, Any]:
    return image(n, id=uuid.uuid4().hex, owner_id=owner, size_bytes=size)


def test_an_override_replaces_the_previous_one_and_all_none_removes_it(db: Database) -> None:
    quotas, user = QuotaRepository(db), _user(db)
    assert quotas.override(user) is None

    first = quotas.set_override(user, {"stored_bytes": 5 * 1024**4, "max_epochs": 0}, by=user)
    second = quotas.set_override(user, {"concurrent_jobs": 3}, by=None)

    assert (first.stored_bytes, first.max_epochs, first.updated_by) == (5 * 1024**4, 0, user)
    assert (second.stored_bytes, second.concurrent_jobs, second.max_epochs) == (None, 3, None)
    quotas.set_override(user, {}, by=None)
    assert quotas.override(user) is None


def test_stored_bytes_count_every_handle_of_the_user_by_kind(db: Database) -> None:
    quotas, images = QuotaRepository(db), ImageRepository(db)
    alice, bob = _user(db), _user(db)
    images.add(**_image(1, alice, 100))
    images.add(**{**_image(1, bob, 100)})  # the same bytes: his own handle, counted to him
    images.add(**_image(2, alice, 50))
    DatasetRepository(db).add(**{**_dataset("d" * 64, alice), "size_bytes": 7})
    add_model_version(ModelRepository(db), "m", created_by=alice)  # size 1

    stored = quotas.stored(alice)

    assert (stored.images, stored.datasets, stored.models, stored.total) == (150, 7, 1, 158)
    assert quotas.stored(bob).total == 100


def test_active_jobs_are_the_queued_and_running_ones_of_the_owner(db: Database) -> None:
    jobs, quotas = JobRepository(db), QuotaRepository(db)
    alice = _user(db)
    ids = [make_job(jobs, owner=alice) for _ in range(3)]
    make_job(jobs, owner="someone-else")
    jobs.cancel(ids[0])

    assert quotas.active_jobs(alice) == 2


def test_training_seconds_add_up_per_user_since_the_period_start(db: Database) -> None:
    quotas, alice = QuotaRepository(db), _user(db)
    start = datetime.now(UTC) - timedelta(minutes=1)
    quotas.record_run("job-1", alice, 30.0)
    quotas.record_run("job-1", alice, 90.0)  # the same run, later: replaces
    quotas.record_run("job-2", alice, 60.0)

    assert quotas.run_seconds("job-1") == 90.0 and quotas.run_seconds("nope") == 0.0
    assert quotas.training_seconds(alice, since=start) == 150.0
    assert quotas.training_seconds(alice, since=start, except_job="job-2") == 90.0
    assert quotas.training_seconds(alice, since=datetime.now(UTC) + timedelta(days=1)) == 0.0


@pytest.mark.parametrize("kind", ["images", "datasets", "models"])
def test_an_insert_past_the_limit_is_refused_and_rolled_back(db: Database, kind: str) -> None:
    quotas, alice = QuotaRepository(db), _user(db)
    ImageRepository(db).add(**_image(1, alice, 90))

    with pytest.raises(QuotaExceeded) as refused:
        if kind == "images":
            ImageRepository(db).add(max_stored_bytes=99, **_image(2, alice, 10))
        elif kind == "datasets":
            DatasetRepository(db).add(max_stored_bytes=99, **{**_dataset("e" * 64, alice)})
        else:
            add_model_version(ModelRepository(db), "m", created_by=alice, max_stored_bytes=90)

    assert refused.value.extra["quota"] == "stored_bytes" and refused.value.extra["used"] == 90
    assert quotas.stored(alice).total == 90


def test_concurrent_inserts_of_one_user_never_pass_the_limit_together(db: Database) -> None:
    images, quotas, alice = ImageRepository(db), QuotaRepository(db), _user(db)
    start = threading.Barrier(12)
    refused: list[QuotaExceeded] = []

    def upload(n: int) -> None:
        start.wait()
        try:
            images.add(max_stored_bytes=550, **_image(n, alice, 100))
        except QuotaExceeded as exc:
            refused.append(exc)

    assert run_concurrently(*[lambda n=n: upload(n) for n in range(12)]) == []

    assert quotas.stored(alice).total == 500  # five fit; the check and insert take turns
    assert len(refused) == 7


def test_the_stored_count_follows_every_insert_and_delete(db: Database) -> None:
    # the constant-time count the quota checks is the sum of the rows, whatever happens
    import sqlalchemy as sa

    from pixelmill.backends.metadata import tables_quotas as tq

    images, datasets, models = ImageRepository(db), DatasetRepository(db), ModelRepository(db)
    quotas, alice = QuotaRepository(db), _user(db)

    def counted() -> int:
        with db.begin() as conn:
            query = sa.select(tq.user_usage.c.stored_bytes).where(tq.user_usage.c.user_id == alice)
            return int(conn.execute(query).scalar_one_or_none() or 0)

    first, _ = images.add(**_image(1, alice, 100))
    images.add(**_image(2, alice, 40))
    images.add(**_image(1, alice, 100))  # her own re-upload: the same row, not counted again
    dataset, _ = datasets.add(**{**_dataset("e" * 64, alice), "size_bytes": 7})
    version = add_model_version(models, "counted", created_by=alice)
    assert counted() == quotas.stored(alice).total == 148
    images.delete(first.id)
    datasets.delete(dataset.id)
    models.delete_version("counted", version.version, actor=alice)
    assert counted() == quotas.stored(alice).total == 40
    with pytest.raises(QuotaExceeded):
        images.add(max_stored_bytes=100, **_image(3, alice, 61))
    assert counted() == quotas.stored(alice).total == 40  # the refused insert left no count


def test_an_owner_at_the_limit_who_adds_bytes_they_have_gets_their_row(db: Database) -> None:
    # a stored prediction of an image predicted before inserts without looking first
    images, quotas, alice = ImageRepository(db), QuotaRepository(db), _user(db)
    first, created = images.add(max_stored_bytes=100, **_image(1, alice, 100))
    assert created

    again, created = images.add(max_stored_bytes=100, **_image(1, alice, 100))

    assert (again.id, created) == (first.id, False)
    assert quotas.stored(alice).total == 100
    with pytest.raises(QuotaExceeded):  # new bytes are still refused
        images.add(max_stored_bytes=100, **_image(2, alice, 1))
