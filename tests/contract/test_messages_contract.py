"""Threads, messages, edits and unread counts: one contract over SQLite (memory, file)
and PostgreSQL (a real server), each migrated with Alembic."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.messages import MessageRepository
from pixelmill.backends.metadata.studies import StudyRepository
from pixelmill.backends.metadata.study_images import StudyImageRepository
from pixelmill.backends.metadata.users import UserRepository
from pixelmill.errors import Conflict, InvalidInput, InvalidParameter, NotFound


@dataclass
class World:
    """A study owned by Ann, with Bob as a viewer and one 1000 x 800 image."""

    db: Database
    repo: MessageRepository
    studies: StudyRepository
    events: EventLog
    study_id: str
    image_id: str
    ann: Actor
    bob: Actor
    cat: Actor  # not a member


@pytest.fixture
def world(db: Database) -> World:
    users = UserRepository(db)
    ann, bob, cat = (Actor(users.create(name).id) for name in ("ann", "bob", "cat"))
    studies = StudyRepository(db)
    study = studies.create(ann, name="Liver", description="", modality="histology", options={})
    studies.set_member(ann, study.id, str(bob.user_id), "viewer")
    sha = hashlib.sha256(b"slide").hexdigest()
    ImageRepository(db).add(
        id=sha[:32],
        sha256=sha,
        format="tiff",
        width=1000,
        height=800,
        bands=3,
        bit_depth=8,
        pages=1,
        orientation=1,
        interpretation="srgb",
        size_bytes=1,
        pixel_size_um=0.5,
        filename="a.tif",
        exif={},
        source="upload",
        job_id=None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        owner_id=str(ann.user_id),
    )
    StudyImageRepository(db).add_image(ann, study.id, sha[:32])
    return World(
        db, MessageRepository(db), studies, EventLog(db), study.id, sha[:32], ann, bob, cat
    )


def _unread(w: World, actor: Actor) -> int:
    user = str(actor.user_id)
    counted = w.studies.counts([w.study_id], user)[w.study_id]["unread_messages"]
    # the dashboard's per-study figure and the study summary's agree
    assert w.repo.unread_by_study(user).get(w.study_id, ("Liver", 0)) == ("Liver", counted)
    return counted


def test_unread_counts_follow_authors_and_read_marks(world: World) -> None:
    w = world
    thread = w.repo.create_thread(w.ann, w.study_id, title="Margins", body="Look at this")
    # the author's own message is never unread; the other member has one
    assert _unread(w, w.ann) == 0
    assert _unread(w, w.bob) == 1
    assert w.repo.thread(thread.id, str(w.bob.user_id)).unread == 1
    # reading clears it; a reply makes it unread for the first author only
    w.repo.mark_read(str(w.bob.user_id), thread.id)
    assert _unread(w, w.bob) == 0
    w.repo.post(w.bob, thread.id, "Agreed")
    assert (_unread(w, w.ann), _unread(w, w.bob)) == (1, 0)
    # marking read twice is an update, not a duplicate
    w.repo.mark_read(str(w.ann.user_id), thread.id)
    w.repo.mark_read(str(w.ann.user_id), thread.id)
    assert _unread(w, w.ann) == 0
    # a deleted message is not unread; a non-member's dashboard shows nothing
    second = w.repo.post(w.ann, thread.id, "oops")
    assert _unread(w, w.bob) == 1
    w.repo.delete(w.ann, second.id)
    assert _unread(w, w.bob) == 0
    assert w.repo.unread_by_study(str(w.cat.user_id)) == {}


def test_open_threads_and_counts_per_thread(world: World) -> None:
    w = world
    a = w.repo.create_thread(w.ann, w.study_id, title="A", body="one")
    w.repo.post(w.ann, a.id, "two")
    b = w.repo.create_thread(w.ann, w.study_id, title="B")
    assert w.studies.counts([w.study_id], str(w.bob.user_id))[w.study_id]["open_threads"] == 2
    resolved = w.repo.update_thread(w.bob, b.id, resolved=True)
    assert resolved.resolved_at is not None
    assert w.studies.counts([w.study_id], str(w.bob.user_id))[w.study_id]["open_threads"] == 1
    # the newest activity first; per thread: live messages and unread for the caller
    w.repo.post(w.ann, a.id, "three")
    page, total = w.repo.threads(w.study_id, str(w.bob.user_id))
    assert total == 2
    assert [(t.title, t.messages, t.unread) for t in page] == [("A", 3, 3), ("B", 0, 0)]
    only_open, n = w.repo.threads(w.study_id, str(w.bob.user_id), resolved=False)
    assert (n, [t.title for t in only_open]) == (1, ["A"])
    reopened = w.repo.update_thread(w.bob, b.id, resolved=False)
    assert reopened.resolved_at is None


def test_edits_keep_the_old_text_and_deletes_are_soft(world: World) -> None:
    w = world
    thread = w.repo.create_thread(w.ann, w.study_id, title="T")
    msg = w.repo.post(w.ann, thread.id, "first draft")
    w.repo.edit(w.ann, msg.id, "second draft")
    edited = w.repo.edit(w.ann, msg.id, "final")
    assert (edited.body, edited.edits, edited.edited_at is not None) == ("final", 2, True)
    assert [(e.edit, e.body) for e in w.repo.edits(msg.id)] == [
        (1, "first draft"),
        (2, "second draft"),
    ]
    # an edit that changes nothing records nothing
    assert w.repo.edit(w.ann, msg.id, "final").edits == 2
    gone = w.repo.delete(w.ann, msg.id)
    assert gone.to_json()["deleted"] and gone.to_json()["body"] == ""
    messages, total = w.repo.messages(thread.id)
    assert total == 1 and messages[0].deleted_at is not None
    with pytest.raises(Conflict):
        w.repo.edit(w.ann, msg.id, "too late")
    # every change is in the study's log, with what it replaced
    log = w.events.list(study_id=w.study_id, newest_first=False)
    edits = [e for e in log if e.action == "message.edit"]
    assert [e.before["body"] for e in edits] == ["first draft", "second draft"]
    assert [e.action for e in log][-1] == "message.delete"
    assert log[-1].before == {"body": "final"}


def test_messages_page_oldest_first(world: World) -> None:
    w = world
    thread = w.repo.create_thread(w.ann, w.study_id, title="T")
    for i in range(5):
        w.repo.post(w.ann if i % 2 else w.bob, thread.id, f"m{i}")
    first, total = w.repo.messages(thread.id, limit=2)
    rest, _ = w.repo.messages(thread.id, limit=10, offset=2)
    assert total == 5
    assert [m.body for m in first + rest] == ["m0", "m1", "m2", "m3", "m4"]
    assert {m.study_id for m in first} == {w.study_id}


def test_a_pinned_region_round_trips_and_is_checked(world: World) -> None:
    w = world
    viewport = {"x": 10, "y": 20.5, "w": 300, "h": 200, "zoom": 0.25}
    t1 = w.repo.create_thread(w.ann, w.study_id, title="here", image_id=w.image_id, region=viewport)
    polygon = {"type": "Polygon", "coordinates": [[[0, 0], [100, 0], [100, 50], [0, 0]]]}
    t2 = w.repo.create_thread(w.ann, w.study_id, title="there", image_id=w.image_id, region=polygon)
    assert w.repo.thread(t1.id, "").region == viewport
    assert w.repo.thread(t2.id, "").region == polygon
    assert t1.image_id == w.image_id
    bad = [
        {"x": 900, "y": 0, "w": 200, "h": 10},  # leaves the 1000 px wide image
        {"x": 0, "y": 0, "w": 0, "h": 10},
        {"x": 0, "y": 0, "w": 5},
        {"x": 0, "y": 0, "w": 5, "h": 5, "name": "Jane Doe"},
        {"type": "Polygon", "coordinates": [[[0, 0], [5000, 0], [0, 5], [0, 0]]]},
        {"type": "Circle", "coordinates": [0, 0]},
    ]
    for region in bad:
        with pytest.raises(InvalidInput):
            w.repo.create_thread(w.ann, w.study_id, title="x", image_id=w.image_id, region=region)
    with pytest.raises(InvalidParameter):  # a region needs its image
        w.repo.create_thread(w.ann, w.study_id, title="x", region=viewport)
    with pytest.raises(InvalidParameter):  # the image must be one of the study's
        w.repo.create_thread(w.ann, w.study_id, title="x", image_id="f" * 32)
    # nothing half-written: only the two good threads exist
    assert w.repo.threads(w.study_id, "")[1] == 2


def test_unknown_ids_are_not_found(world: World) -> None:
    w = world
    for call in (
        lambda: w.repo.thread("nope", ""),
        lambda: w.repo.message("nope"),
        lambda: w.repo.post(w.ann, "nope", "hi"),
        lambda: w.repo.edit(w.ann, "nope", "hi"),
        lambda: w.repo.update_thread(w.ann, "nope", title="x"),
    ):
        with pytest.raises(NotFound):
            call()
