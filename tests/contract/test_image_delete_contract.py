"""Deleting an image deletes what was derived from it in the same transaction, on
SQLite and PostgreSQL: the analyses that ran on it lose its entry (and are recounted),
their job tasks forget its artifacts and overlay, the overlay image row goes (unless
another image's analysis shares it), and a thread pinned to it loses its region."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pixelmill.backends.metadata import tables_jobs as tj
from pixelmill.backends.metadata._time import now
from pixelmill.backends.metadata.analyses import AnalysisRepository
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.messages import MessageRepository
from pixelmill.backends.metadata.studies import StudyRepository
from pixelmill.backends.metadata.study_images import StudyImageRepository
from pixelmill.backends.metadata.users import UserRepository
from tests.contract.test_metadata_contract import image


def _job(db: Database, job_id: str, tasks: list[tuple[str, str | None, list[Any]]]) -> None:
    at = now()
    with db.begin() as conn:
        conn.execute(
            tj.jobs.insert().values(
                id=job_id, kind="pipeline", state="succeeded", queue="cpu", params={},
                inputs=[i for i, _, _ in tasks], total=len(tasks), time_limit_s=60,
                max_retries=0, created_at=at, updated_at=at,
            )
        )  # fmt: skip
        for idx, (input_id, result, artifacts) in enumerate(tasks):
            conn.execute(
                tj.job_tasks.insert().values(
                    job_id=job_id, idx=idx, queue="cpu", state="succeeded", input=input_id,
                    result_image=result, artifacts=artifacts, created_at=at,
                )
            )  # fmt: skip


def _entry(idx: int, count: int, result: str) -> dict[str, Any]:
    return {"task": idx, "state": "succeeded", "object_count": count, "result_image": result,
            "artifacts": ["objects", "summary"]}  # fmt: skip


def _world(db: Database) -> dict[str, Any]:
    user = UserRepository(db).create("ana")
    actor = Actor(user.id)
    study = StudyRepository(db).create(
        actor, name="s", description="", modality="other", options={}
    )
    images = ImageRepository(db)
    a, b, over_a, over_b, shared = (
        images.add(**image(n, owner_id=user.id, size_bytes=100))[0] for n in range(1, 6)
    )
    for i in (a, b):
        StudyImageRepository(db).add_image(actor, study.id, i.id)
    keys = [{"name": "objects", "key": "jobs/j1/tasks/000000/objects.arrow"}]
    _job(db, "j1", [(a.id, over_a.id, keys), (b.id, over_b.id, [])])
    analyses = AnalysisRepository(db)
    first = analyses.create(
        actor, study.id, job_id="j1", kind="preset", target="he", params={},
        image_ids=[a.id, b.id],
    )  # fmt: skip
    summary = {"object_count": 7, "images": {a.id: _entry(0, 3, over_a.id),
                                             b.id: _entry(1, 4, over_b.id)}}  # fmt: skip
    first = analyses.refresh(first, status="done", summary=summary, image_status={})
    # another analysis of b whose overlay row is shared with a's second run: kept
    second = analyses.create(
        actor, study.id, job_id="j2", kind="preset", target="he", params={},
        image_ids=[a.id, b.id],
    )  # fmt: skip
    both = {"object_count": 2, "images": {a.id: _entry(0, 1, shared.id),
                                          b.id: _entry(1, 1, shared.id)}}  # fmt: skip
    analyses.refresh(second, status="done", summary=both, image_status={})
    messages = MessageRepository(db)
    region = {"x": 1, "y": 2, "w": 3, "h": 4}
    thread = messages.create_thread(actor, study.id, title="t", image_id=a.id, region=region)
    return {"user": user, "study": study, "images": [a, b, over_a, over_b, shared],
            "analyses": [first, second], "thread": thread}  # fmt: skip


def test_an_image_goes_with_its_analysis_results_overlays_and_thread_region(
    db: Database,
) -> None:
    w = _world(db)
    user, study, thread, (first, second) = w["user"], w["study"], w["thread"], w["analyses"]
    a, b, over_a, over_b, shared = w["images"]
    images, analyses, messages = ImageRepository(db), AnalysisRepository(db), MessageRepository(db)

    assert images.delete(a.id).id == a.id

    assert images_sha(db, a.id) is None and images_sha(db, over_a.id) is None
    kept = analyses.get(study.id, first.id)
    assert kept.image_ids == [b.id] and list(kept.summary["images"]) == [b.id]
    assert kept.summary["object_count"] == 4
    assert analyses.get(study.id, second.id).summary["object_count"] == 1
    assert images.get(shared.id).id == shared.id and images.get(over_b.id).id == over_b.id
    with db.read() as conn:
        tasks = conn.execute(
            sa.select(tj.job_tasks.c.idx, tj.job_tasks.c.result_image, tj.job_tasks.c.artifacts)
            .where(tj.job_tasks.c.job_id == "j1")
            .order_by(tj.job_tasks.c.idx)
        ).all()
    assert [(t.result_image, t.artifacts) for t in tasks] == [(None, None), (over_b.id, [])]
    pinned = messages.thread(thread.id, user.id)
    assert (pinned.image_id, pinned.region) == (None, None)
    assert images.count(owner_id=user.id) == 3


def test_the_deletion_names_the_objects_left_to_delete(db: Database) -> None:
    from pixelmill.backends.metadata.image_delete import delete_image

    a, _, over_a, _, _ = _world(db)["images"]
    gone = delete_image(db, a.id)
    assert gone.record.id == a.id
    assert [r.id for r in gone.derived] == [over_a.id]
    assert gone.artifact_keys == ["jobs/j1/tasks/000000/objects.arrow"]


def images_sha(db: Database, image_id: str) -> str | None:
    """The sha256 an image row had (``None``: no such row)."""
    with db.read() as conn:
        return conn.execute(
            sa.text("SELECT sha256 FROM images WHERE id = :id"), {"id": image_id}
        ).scalar()
