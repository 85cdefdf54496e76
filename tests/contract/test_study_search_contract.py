"""Listings and unlinking over SQLite (memory, file) and PostgreSQL (a real server):
``q`` is text, never a LIKE pattern; an image list's cursor is only the owner's own
image; unlinking an image unpins the study's threads from it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.messages import MessageRepository
from pixelmill.backends.metadata.studies import StudyRepository
from pixelmill.backends.metadata.study_images import StudyImageRepository
from pixelmill.backends.metadata.users import UserRepository
from pixelmill.errors import NotFound


@dataclass
class World:
    db: Database
    images: ImageRepository
    studies: StudyRepository
    study_images: StudyImageRepository
    ann: Actor
    bob: Actor


@pytest.fixture
def world(db: Database) -> World:
    users = UserRepository(db)
    ann, bob = (Actor(users.create(name).id) for name in ("ann", "bob"))
    return World(db, ImageRepository(db), StudyRepository(db), StudyImageRepository(db), ann, bob)


def _image(w: World, owner: Actor, name: str, age_days: int = 0) -> str:
    sha = hashlib.sha256(name.encode()).hexdigest()
    w.images.add(
        id=sha[:32], sha256=sha, format="tiff", width=1000, height=800, bands=3, bit_depth=8,
        pages=1, orientation=1, interpretation="srgb", size_bytes=1, pixel_size_um=0.5,
        filename=name, exif={}, source="upload", job_id=None,
        created_at=datetime(2026, 1, 10, tzinfo=UTC) - timedelta(days=age_days),
        owner_id=str(owner.user_id),
    )  # fmt: skip
    return sha[:32]


def _study(w: World, name: str, description: str = "") -> str:
    return w.studies.create(
        w.ann, name=name, description=description, modality="histology", options={}
    ).id


@pytest.mark.parametrize("wildcard", ["%", "_", "L_ver", "%ver", "\\", "/"])
def test_study_search_takes_wildcards_literally(world: World, wildcard: str) -> None:
    w = world
    _study(w, "Liver", "fibrosis")
    found, total = w.studies.search(user_id=str(w.ann.user_id), q=wildcard, statuses=("active",))
    assert (found, total) == ([], 0)


def test_study_search_finds_the_characters_themselves(world: World) -> None:
    w = world
    _study(w, "Liver", "fibrosis")
    odd = _study(w, "100% of cohort_2", "a\\b/c")
    me = str(w.ann.user_id)
    for q in ("%", "_2", "% OF", "\\", "/", "LIVER"):
        found, _total = w.studies.search(user_id=me, q=q, statuses=("active",))
        expected = "Liver" if q == "LIVER" else "100% of cohort_2"
        assert [s.name for s, _ in found] == [expected], q
    found, _total = w.studies.search(user_id=me, q="a\\b/", statuses=("active",))
    assert [s.id for s, _ in found] == [odd]


def test_study_image_search_takes_wildcards_literally(world: World) -> None:
    w = world
    sid = _study(w, "Liver")
    w.study_images.add_image(w.ann, sid, _image(w, w.ann, "liver.tif"))
    w.study_images.add_image(w.ann, sid, _image(w, w.ann, "50%_b.tif"), display_name="x_1")
    for q, names in (("%", ["50%_b.tif"]), ("_", ["50%_b.tif"]), ("l_ver", []), ("x_1", ["50%_b.tif"]), ("LIVER", ["liver.tif"])):  # fmt: skip
        rows, total = w.study_images.images(sid, q=q)
        assert ([image["filename"] for _, image in rows], total) == (names, len(names)), q


def test_image_list_cursor_is_only_the_owners_own_image(world: World) -> None:
    w = world
    mine = [_image(w, w.ann, f"a{i}.tif", age_days=i) for i in range(3)]
    theirs = _image(w, w.bob, "b.tif", age_days=5)
    ann = str(w.ann.user_id)
    page = w.images.list(owner_id=ann, after=mine[0])
    assert [r.id for r in page] == mine[1:]
    # another owner's image is as unknown as a made-up id
    for anchor in (theirs, "f" * 32):
        with pytest.raises(NotFound) as err:
            w.images.list(owner_id=ann, after=anchor)
        assert str(err.value) == f"no image {anchor!r} to page after"
    # everyone's list (admins) still pages after anyone's image
    assert [r.id for r in w.images.list(after=mine[2])] == [theirs]


def test_unlinking_an_image_unpins_the_studys_threads(world: World) -> None:
    w = world
    sid, other = _study(w, "Liver"), _study(w, "Kidney")
    image = _image(w, w.ann, "slide.tif")
    for study in (sid, other):
        w.study_images.add_image(w.ann, study, image)
    messages = MessageRepository(w.db)
    region = {"x": 10, "y": 20, "w": 100, "h": 50}
    pinned = messages.create_thread(w.ann, sid, title="here", image_id=image, region=region)
    elsewhere = messages.create_thread(w.ann, other, title="there", image_id=image)
    w.study_images.remove_image(w.ann, sid, image)
    thread = messages.thread(pinned.id, "")
    assert (thread.image_id, thread.region) == (None, None)
    assert messages.threads(sid, "", image_id=image) == ([], 0)
    # the study that still holds it keeps its pin
    assert messages.thread(elsewhere.id, "").image_id == image
    event = EventLog(w.db).list(study_id=sid, limit=1)[0]
    assert (event.action, event.after) == (
        "image.remove",
        {"threads_unpinned": 1, "annotations_kept": 0},
    )
    with pytest.raises(NotFound):
        w.study_images.remove_image(w.ann, sid, image)
