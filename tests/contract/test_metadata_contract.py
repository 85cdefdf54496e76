"""One contract for the metadata DB: the image and API-key repositories over SQLite in
memory, a SQLite file and PostgreSQL (a real server), each migrated with Alembic."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pixelmill.backends.metadata import tables as t
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.keys import KeyRepository
from pixelmill.errors import NotFound

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


@pytest.fixture
def images(db: Database) -> ImageRepository:
    return ImageRepository(db)


@pytest.fixture
def keys(db: Database) -> KeyRepository:
    return KeyRepository(db)


def image(n: int, **over: Any) -> dict[str, Any]:
    sha = hashlib.sha256(str(n).encode()).hexdigest()
    fields: dict[str, Any] = {
        "id": sha[:32],
        "sha256": sha,
        "format": "jpeg",
        "width": 640 + n,
        "height": 480,
        "bands": 3,
        "bit_depth": 8,
        "pages": 1,
        "orientation": 6,
        "interpretation": "srgb",
        "size_bytes": 123_456_789_012,  # beyond 32 bits
        "pixel_size_um": 0.25,
        "filename": "slide ü.jpg",
        "exif": {"Make": "Zeiss", "Orientation": "6"},
        "source": "upload",
        "job_id": None,
        "created_at": T0 + timedelta(seconds=n),
        "owner_id": "",
    }
    fields.update(over)
    return fields


# --- migrations -----------------------------------------------------------------------


def test_migrations_are_idempotent(db: Database) -> None:
    head = db.current_revision()
    assert head is not None
    db.upgrade()  # a second start migrates nothing and breaks nothing
    assert db.current_revision() == head
    assert {"images", "api_keys"} <= set(sa.inspect(db.engine).get_table_names())


def test_the_migrated_schema_is_the_one_the_code_uses(db: Database) -> None:
    # every table, column and index the repositories rely on exists as migrated
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import pixelmill.backends.metadata.tables_jobs
    import pixelmill.backends.metadata.tables_ml
    import pixelmill.backends.metadata.tables_quotas
    import pixelmill.backends.metadata.tables_workspace  # noqa: F401  (their tables join metadata)

    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), t.metadata) == []


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no schema yet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old' / 'pixelmill.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_jobs_from_before_0005_keep_their_owner(empty_url: str) -> None:
    from pixelmill.backends.metadata.jobs import JobRepository
    from pixelmill.backends.metadata.tables_jobs import jobs

    # given a DB at 0004 holding a job submitted with key k1 and one without a key
    database = Database(empty_url)
    database.upgrade("0004_analysis")
    row = {
        "kind": "pipeline",
        "state": "succeeded",
        "queue": "transform",
        "params": {},
        "inputs": [],
        "total": 0,
        "time_limit_s": 1.0,
        "max_retries": 0,
        "created_at": T0,
        "updated_at": T0,
        "finished_at": T0,
    }
    with database.begin() as conn:
        conn.execute(jobs.insert().values(**row, id="a" * 32, owner="k1"))
        conn.execute(jobs.insert().values(**row, id="b" * 32))  # owner: the column default
    # when it is upgraded to the revision before users (0007 gives keys' jobs to users)
    database.upgrade("0006_job_event_notify")
    # then k1 still owns its job, the keyless one belongs to no key, and both expire
    repo = JobRepository(database)
    assert repo.get("a" * 32, owner="k1").owner == "k1"
    assert [j.id for j in repo.list_jobs(owner="k1")] == ["a" * 32]
    with pytest.raises(NotFound):
        repo.get("b" * 32, owner="k1")
    assert repo.get("b" * 32).owner == ""
    indexes = {i["name"] for i in sa.inspect(database.engine).get_indexes("jobs")}
    assert {"ix_jobs_owner_id", "ix_jobs_finished_at"} <= indexes
    # and, at the newest revision (retention spares jobs that study analyses keep, a
    # table of 0007), both expire
    database.upgrade()
    assert repo.count_finished(before=T0 + timedelta(seconds=1)) == 2
    database.dispose()


def test_a_round_one_database_keeps_its_data_and_gets_a_first_admin(empty_url: str) -> None:
    from pixelmill.backends.metadata.jobs import JobRepository
    from pixelmill.backends.metadata.keys import KeyRepository
    from pixelmill.backends.metadata.tables_jobs import jobs
    from pixelmill.backends.metadata.users import UserRepository

    # given a database as the previous release left it: a key, an image, a keyed job
    database = Database(empty_url)
    database.upgrade("0006_job_event_notify")
    with database.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO api_keys (id, name, hash, role, created_at) "
                "VALUES ('k1', 'old', :h, 'write', :t)"
            ),
            {"h": "0" * 64, "t": T0},
        )
        old = {k: v for k, v in image(1).items() if k != "owner_id"}
        conn.execute(t.images.insert().values(**old))
        conn.execute(
            jobs.insert().values(
                id="a" * 32,
                owner="k1",
                kind="pipeline",
                state="succeeded",
                queue="transform",
                params={},
                inputs=[],
                total=0,
                time_limit_s=1.0,
                max_retries=0,
                created_at=T0,
                updated_at=T0,
            )
        )
    # when it is upgraded to the newest revision
    database.upgrade()
    # then the first admin exists (no password yet) and owns the key, image and job
    admin = UserRepository(database).by_username("admin")
    assert admin.site_role == "admin" and not admin.has_password
    assert KeyRepository(database).get("k1").user_id == admin.id
    assert ImageRepository(database).get(old["id"]).owner_id == admin.id
    assert JobRepository(database).get("a" * 32, owner=admin.id).owner == admin.id
    database.dispose()


# --- images ---------------------------------------------------------------------------


def test_an_added_image_reads_back_field_for_field(images: ImageRepository) -> None:
    fields = image(1)
    record, created = images.add(**fields)
    assert created
    assert record.to_dict() == fields
    assert images.get(fields["id"]) == record
    assert images.get(fields["id"]).created_at.tzinfo is not None


def test_created_at_defaults_to_now(images: ImageRepository) -> None:
    fields = image(1)
    del fields["created_at"]
    before = datetime.now(UTC)
    record, _ = images.add(**fields)
    assert before - timedelta(seconds=1) <= record.created_at <= datetime.now(UTC)


def test_find_by_sha256(images: ImageRepository) -> None:
    images.add(**image(1))
    found = images.find_by_sha256(image(1)["sha256"])
    assert found is not None and found.id == image(1)["id"]
    assert images.find_by_sha256(image(2)["sha256"]) is None


def test_the_same_bytes_twice_return_the_first_image(images: ImageRepository) -> None:
    first, created = images.add(**image(1))
    again, created_again = images.add(**image(1, id="other-id", filename="copy.jpg"))
    assert created and not created_again
    assert again == first
    assert images.count() == 1


def test_unknown_images_are_not_found(images: ImageRepository) -> None:
    with pytest.raises(NotFound):
        images.get("missing")
    with pytest.raises(NotFound):
        images.delete("missing")


def test_list_pages_newest_first_with_a_cursor(images: ImageRepository) -> None:
    # given 7 images, two of them uploaded in the same microsecond
    for n in range(6):
        images.add(**image(n))
    images.add(**image(6, created_at=image(5)["created_at"]))
    expected = sorted(
        (image(n, **({"created_at": image(5)["created_at"]} if n == 6 else {})) for n in range(7)),
        key=lambda f: (f["created_at"], f["id"]),
        reverse=True,
    )
    # when a client pages through them 3 at a time
    pages, after = [], None
    while page := images.list(limit=3, after=after):
        pages.append([r.id for r in page])
        after = page[-1].id
    # then it sees every image once, newest first, ties in a stable order
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == [f["id"] for f in expected]
    assert images.count() == 7


def test_paging_after_an_unknown_image_is_not_found(images: ImageRepository) -> None:
    with pytest.raises(NotFound):
        images.list(after="missing")


def test_delete_returns_the_image_and_forgets_it(images: ImageRepository) -> None:
    images.add(**image(1))
    images.add(**image(2))
    gone = images.delete(image(1)["id"])
    assert gone.sha256 == image(1)["sha256"]
    assert images.count() == 1
    assert images.find_by_sha256(image(1)["sha256"]) is None
    # and the same bytes can be uploaded again afterwards
    _, created = images.add(**image(1))
    assert created


def run_together(n: int, work: Any) -> list[Any]:
    """Run ``work(i)`` on ``n`` threads released at the same moment; re-raise failures."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return results


def test_concurrent_uploads_of_the_same_bytes_make_one_image(images: ImageRepository) -> None:
    results = run_together(8, lambda i: images.add(**image(1, filename=f"copy{i}.jpg")))
    assert sum(created for _, created in results) == 1
    assert len({record.id for record, _ in results}) == 1
    assert images.count() == 1


def test_concurrent_uploads_of_different_bytes_all_land(images: ImageRepository) -> None:
    results = run_together(8, lambda i: images.add(**image(i)))
    assert all(created for _, created in results)
    assert images.count() == 8


# --- API keys -------------------------------------------------------------------------


def test_a_created_key_authenticates_with_its_secret_only(
    keys: KeyRepository, db: Database
) -> None:
    record, secret = keys.create("ci uploader", role="write", user_id="u1")
    assert record.role == "write" and record.revoked_at is None
    assert keys.authenticate(secret) == record
    assert keys.authenticate(secret + "x") is None
    assert keys.authenticate("") is None
    # only a hash is stored
    with db.begin() as conn:
        stored = [tuple(row) for row in conn.execute(sa.select(t.api_keys)).all()]
    assert secret not in repr(stored)


def test_a_revoked_key_no_longer_authenticates(keys: KeyRepository) -> None:
    record, secret = keys.create("leaked", user_id="u1")
    revoked = keys.revoke(record.id)
    assert revoked.revoked_at is not None
    assert keys.authenticate(secret) is None
    # revoking again keeps the first revocation time
    assert keys.revoke(record.id).revoked_at == revoked.revoked_at
    with pytest.raises(NotFound):
        keys.revoke("missing")
    with pytest.raises(NotFound):
        keys.get("missing")


def test_any_admin_counts_live_admin_keys_only(keys: KeyRepository) -> None:
    assert not keys.any_admin()
    keys.create("writer", role="write", user_id="u1")
    assert not keys.any_admin()
    admin, _ = keys.create("root", role="admin", user_id="u1")
    assert keys.any_admin()
    keys.revoke(admin.id)
    assert not keys.any_admin()


def test_keys_are_listed_oldest_first(keys: KeyRepository) -> None:
    made = [keys.create(f"key {i}", role="read", user_id="u1")[0] for i in range(3)]
    assert [k.id for k in keys.list()] == [k.id for k in made]
