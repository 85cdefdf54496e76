"""The patient and analysis repositories behave the same on SQLite (memory and file)
and PostgreSQL (a real server): codes from the study's counter, also under concurrent
creates; unlinking on delete; analyses that only move forward."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata.analyses import AnalysisRepository
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.patients import PatientRepository
from pixelmill.backends.metadata.studies import StudyRepository
from pixelmill.backends.metadata.study_images import StudyImageRepository
from pixelmill.backends.metadata.users import UserRepository
from pixelmill.errors import Conflict, NotFound


@pytest.fixture
def world(db: Database) -> dict[str, Any]:
    """A user, their study and one image of theirs in it."""
    owner = UserRepository(db).create("olga")
    actor = Actor(owner.id)
    study = StudyRepository(db).create(
        actor, name="s", description="", modality="histology", options={}
    )
    ImageRepository(db).add(
        id="i" * 32, sha256="0" * 64, format="png", width=10, height=10, bands=3,
        bit_depth=8, pages=1, orientation=1, interpretation="srgb", size_bytes=1,
        exif={}, source="upload", pixel_size_um=None, filename=None, job_id=None,
        owner_id=owner.id,
    )  # fmt: skip
    StudyImageRepository(db).add_image(actor, study.id, "i" * 32)
    return {"actor": actor, "study": study.id, "image": "i" * 32}


def test_codes_count_up_per_study_and_survive_concurrency(
    db: Database, world: dict[str, Any]
) -> None:
    repo = PatientRepository(db)
    codes: list[str] = []
    lock = threading.Lock()

    def create() -> None:
        for _ in range(5):
            code = repo.create(world["actor"], world["study"]).code
            with lock:
                codes.append(code)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [f"S-{n:04d}" for n in range(1, 21)]
    page, total = repo.page(world["study"], limit=3, offset=9)
    assert total == 20 and [p.code for p in page] == ["S-0010", "S-0011", "S-0012"]
    with pytest.raises(NotFound):
        repo.create(world["actor"], "no-such-study")


def test_attributes_external_ids_and_unlink_on_delete(db: Database, world: dict[str, Any]) -> None:
    repo, links = PatientRepository(db), StudyImageRepository(db)
    p = repo.create(
        world["actor"], world["study"], external_id_hmac="a" * 64, sex="female", tags=["x"]
    )
    assert (p.sex, p.tags, p.has_external_id, p.image_count) == ("female", ["x"], True, 0)
    with pytest.raises(Conflict):
        repo.create(world["actor"], world["study"], external_id_hmac="a" * 64)
    assert repo.find_by_external(world["study"], "a" * 64).id == p.id
    links.update_image(world["actor"], world["study"], world["image"], patient_id=p.id)
    assert repo.get(world["study"], p.id).image_count == 1
    changed = repo.update(
        world["actor"], world["study"], p.id, age_band="90+", external_id_hmac=None
    )
    assert (changed.age_band, changed.has_external_id) == ("90+", False)
    repo.delete(world["actor"], world["study"], p.id)
    assert links.study_image(world["study"], world["image"]).patient_id is None  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        repo.get(world["study"], p.id)
    actions = [e.action for e in EventLog(db).list(study_id=world["study"])]
    assert actions[:3] == ["patient.delete", "patient.update", "image.update"]
    assert "a" * 64 not in str([e.after for e in EventLog(db).list(study_id=world["study"])])


def test_analyses_record_refresh_forward_only(db: Database, world: dict[str, Any]) -> None:
    repo = AnalysisRepository(db)
    image = world["image"]
    assert repo.not_in_study(world["study"], [image, "nope"]) == ["nope"]
    a = repo.create(
        world["actor"], world["study"], job_id="j1", kind="preset", target="he-nuclei",
        params={}, image_ids=[image],
    )  # fmt: skip
    status = StudyImageRepository(db).study_image(world["study"], image)
    assert a.status == "running" and status is not None and status.analysis_status == "running"
    done = repo.refresh(a, status="done", summary={"object_count": 3}, image_status={image: "done"})
    assert done.status == "done" and done.summary == {"object_count": 3}
    again = repo.refresh(a, status="failed", summary={}, image_status={image: "failed"})
    assert again.status == "done"
    status = StudyImageRepository(db).study_image(world["study"], image)
    assert status is not None and status.analysis_status == "done"
    assert [x.id for x in repo.finished_for_study(world["study"])] == [a.id]
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tw.analyses)).scalar_one() == 1
