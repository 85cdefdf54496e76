"""An analysis's progress is recorded as its images finish: one ``analysis.progress``
event each time the count of finished images changes, then its end; on SQLite and
PostgreSQL."""

from __future__ import annotations

from pixelmill.backends.metadata.analyses import AnalysisRepository
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.studies import StudyRepository
from pixelmill.backends.metadata.users import UserRepository


def summary(*states: str) -> dict[str, object]:
    return {"images": {f"i{n}": {"state": s} for n, s in enumerate(states)}}


def test_progress_is_an_event_each_time_an_image_finishes_then_the_end(db: Database) -> None:
    user = UserRepository(db).create("ana")
    study = StudyRepository(db).create(
        Actor(user.id), name="s", description="", modality="other", options={}
    )
    repo = AnalysisRepository(db)
    record = repo.create(
        Actor(user.id), study.id, job_id="j1", kind="preset", target="he-nuclei", params={},
        image_ids=[],
    )  # fmt: skip

    def refresh(status: str, *states: str) -> None:
        nonlocal record
        record = repo.refresh(record, status=status, summary=summary(*states), image_status={})

    refresh("running", "running", "queued")  # nothing finished yet: no progress
    refresh("running", "succeeded", "running")  # one of two
    refresh("running", "succeeded", "running")  # the same: nothing new
    refresh("done", "succeeded", "succeeded")
    events = EventLog(db).list(study_id=study.id, newest_first=False)
    ours = [e for e in events if e.action.startswith("analysis.")]
    assert [e.action for e in ours] == ["analysis.run", "analysis.progress", "analysis.done"]
    assert ours[1].after == {"images_done": 1, "images": 2}
