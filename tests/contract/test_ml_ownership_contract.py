"""Ownership in the ML tables, the same on SQLite and PostgreSQL: datasets scoped by
their uploader (random ids, one dataset per uploader and content), and per-model
permissions granted with the model's creation and audited with the actor."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pixelmill.backends.metadata.database import Database
from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.model_permissions import ModelPermissionRepository
from pixelmill.backends.metadata.models import DatasetRepository, ModelRepository
from pixelmill.backends.metadata.users import UserRepository
from pixelmill.errors import Conflict, NotFound
from tests.ml_helpers import add_model_version


def _user(db: Database) -> str:
    return UserRepository(db).create(f"u-{uuid.uuid4().hex[:8]}", site_role="member").id


def _dataset(sha: str, owner: str | None) -> dict[str, Any]:
    return {
        "sha256": sha,
        "name": "d",
        "task": "segmentation",
        "size_bytes": 10,
        "items": 2,
        "classes": [],
        "split": {"train": ["a"], "val": ["b"]},
        "summary": {},
        "created_by": owner,
    }


def test_datasets_belong_to_their_uploader(db: Database) -> None:
    repo = DatasetRepository(db)
    alice, bob = _user(db), _user(db)
    sha = uuid.uuid4().hex * 2
    mine, created = repo.add(**_dataset(sha, alice))
    again, created_again = repo.add(**_dataset(sha, alice))
    theirs, created_theirs = repo.add(**_dataset(sha, bob))
    assert created and not created_again and created_theirs
    assert again.id == mine.id != theirs.id
    assert mine.id != sha[:32]
    assert repo.find_by_sha256(sha, owner=bob) == theirs
    assert [d.id for d in repo.list(owner=alice)] == [mine.id]
    with pytest.raises(NotFound):
        repo.get(mine.id, owner=bob)
    with pytest.raises(NotFound):
        repo.delete(mine.id, owner=bob)
    repo.delete(mine.id, owner=alice)
    assert repo.sha256_in_use(sha)
    repo.delete(theirs.id)  # an admin: no owner
    assert not repo.sha256_in_use(sha)


def test_the_creator_of_a_model_manages_it_and_grants_are_audited(db: Database) -> None:
    models, perms = ModelRepository(db), ModelPermissionRepository(db)
    alice, bob = _user(db), _user(db)
    name = f"m-{uuid.uuid4().hex[:8]}"
    add_model_version(models, name, created_by=alice, manager=alice)
    assert perms.level(name, alice) == "manage"
    assert perms.level(name, bob) is None
    add_model_version(models, name, created_by=bob, manager=bob)  # a later version: no new grant
    assert perms.level(name, bob) is None
    with pytest.raises(Conflict):
        add_model_version(models, name, created_by=bob, manager=bob, new_only=True)
    perms.set(name, bob, "read", actor=Actor(alice))
    perms.set(name, bob, "edit", actor=Actor(alice))
    assert perms.levels(bob) == {name: "edit"}
    assert [(p.user_id, p.level, p.granted_by) for p in perms.list(name)] == [
        (alice, "manage", alice),
        (bob, "edit", alice),
    ]
    perms.delete(name, bob, actor=Actor(alice))
    with pytest.raises(NotFound):
        perms.delete(name, bob, actor=Actor(alice))
    audit = [(a.action, a.actor) for a in models.audit(name)]
    assert audit == [
        ("register", alice),
        ("register", bob),
        ("grant", alice),
        ("grant", alice),
        ("revoke", alice),
    ]
    events = [e for e in EventLog(db).list() if e.target_id == name]
    assert [e.action for e in events] == ["model.revoke", "model.grant", "model.grant"]
    assert events[0].before == {"user_id": bob, "level": "edit"}
