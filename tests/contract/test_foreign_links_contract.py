"""Foreign links, on SQLite and PostgreSQL: a study's link to an image that whoever
added it did not own (nor is a site admin now), made before only owners could share.
They are found, and unlinked as the API unlinks; an owner's own links, an admin's,
a study import's and a job result's are never listed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from pixelmill.backends.metadata import tables_workspace as tw
from pixelmill.backends.metadata._time import now
from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.messages import MessageRepository
from pixelmill.backends.metadata.studies import StudyRepository
from pixelmill.backends.metadata.study_images import StudyImageRepository
from pixelmill.backends.metadata.users import UserRepository
from tests.contract.test_metadata_contract import image


def _link_directly(db: Database, study_id: str, image_id: str, added_by: str) -> None:
    """A link row as the API wrote it before the owner-only rule (it refuses it now)."""
    with db.begin() as conn:
        conn.execute(
            tw.study_images.insert().values(
                study_id=study_id, image_id=image_id, added_by=added_by,
                added_at=now() - timedelta(days=30),
            )
        )  # fmt: skip


def _world(db: Database) -> dict[str, Any]:
    users, studies, images = UserRepository(db), StudyRepository(db), ImageRepository(db)
    alice, bob, mallory, carol = (users.create(n) for n in ("alice", "bob", "mallory", "carol"))
    root = users.create("root", site_role="admin")

    def study(owner: Any, name: str) -> str:
        return studies.create(
            Actor(owner.id), name=name, description="", modality="other", options={}
        ).id

    def img(n: int, owner: str, **over: Any) -> str:
        return images.add(**image(n, owner_id=owner, filename=f"slide-{n}.png", **over))[0].id

    s, b, r, c = (
        study(alice, "Alice's"),
        study(bob, "Bob's"),
        study(root, "Root's"),
        study(carol, "Carol's"),
    )
    studies.set_member(Actor(bob.id), b, mallory.id, "viewer")
    studies.set_member(Actor(alice.id), s, bob.id, "viewer")
    x, y = img(1, alice.id), img(2, bob.id)
    imported = img(3, bob.id, source="import", job_id="import-job")
    result = img(4, bob.id, source="job", job_id="flip-job")
    legacy = img(5, "")  # an unowned image (a pre-users row, an unowned job's result)
    links = StudyImageRepository(db)
    links.add_image(Actor(alice.id), s, x)  # the owner's own
    links.add_image(Actor(bob.id), b, y)
    links.add_image(Actor(bob.id), b, imported)  # as a study import links (the job's owner)
    links.add_image(Actor(bob.id), b, result)  # a job result, linked by the job's owner
    links.add_image(Actor(root.id), r, x)  # a site admin shares anything
    _link_directly(db, b, x, bob.id)  # laundered: bob reads x in Alice's study only
    _link_directly(db, b, legacy, bob.id)
    _link_directly(db, c, x, carol.id)  # carol is a site admin now
    users.set_site_role(carol.id, "admin")
    return {"alice": alice, "bob": bob, "mallory": mallory, "studies": (s, b, r, c),
            "images": (x, y, imported, result, legacy)}  # fmt: skip


def test_foreign_links_are_found_with_who_owns_and_who_added_them(db: Database) -> None:
    w = _world(db)
    (s, b, _r, _c), (x, _y, _imported, _result, legacy) = w["studies"], w["images"]

    found = StudyImageRepository(db).foreign_links()

    assert [(f.study_id, f.image_id) for f in found] == [(b, x), (b, legacy)]  # oldest first
    by_image = {f.image_id: f for f in found}
    laundered = by_image[x]
    assert (laundered.study_name, laundered.filename) == ("Bob's", "slide-1.png")
    assert (laundered.owner, laundered.owner_id) == ("alice", w["alice"].id)
    assert (laundered.added_by, laundered.added_by_id) == ("bob", w["bob"].id)
    assert laundered.added_at.tzinfo is not None and laundered.added_at < now()
    assert (by_image[legacy].owner, by_image[legacy].owner_id) == (None, "")
    assert laundered.to_json()["added_at"] == laundered.added_at.isoformat()
    assert s not in {f.study_id for f in found}


def test_unlinking_them_ends_the_readers_access_and_says_why(db: Database) -> None:
    w = _world(db)
    (s, b, r, c), (x, y, imported, result, legacy) = w["studies"], w["images"]
    links, mallory = StudyImageRepository(db), w["mallory"]
    thread = MessageRepository(db).create_thread(
        Actor(w["bob"].id), b, title="look", image_id=x, region={"x": 1, "y": 1, "w": 2, "h": 2}
    )
    assert [g[0] for g in links.studies_granting(x, mallory.id)] == [b]

    for link in links.foreign_links():
        links.remove_image(Actor(), link.study_id, link.image_id, reason="foreign-link")

    assert links.foreign_links() == []
    assert links.studies_granting(x, mallory.id) == []
    assert [g[0] for g in links.studies_granting(x, w["bob"].id)] == [s]  # still in S
    kept = {(si, i) for si, i in _all_links(db)}
    assert kept == {(s, x), (b, y), (b, imported), (b, result), (r, x), (c, x)}
    pinned = MessageRepository(db).thread(thread.id, w["bob"].id)
    assert (pinned.image_id, pinned.region) == (None, None)  # as an API unlink leaves it
    removed = EventLog(db).list(study_id=b, action="image.remove")
    assert sorted(e.target_id or "" for e in removed) == sorted([x, legacy])
    assert all(e.after["reason"] == "foreign-link" and e.actor_id is None for e in removed)


def _all_links(db: Database) -> list[tuple[str, str]]:
    si = tw.study_images
    with db.read() as conn:
        return [(r.study_id, r.image_id) for r in conn.execute(sa.select(si)).all()]
