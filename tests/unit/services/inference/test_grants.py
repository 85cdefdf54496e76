"""Who may predict with a model, as a serving process remembers it: a revocation made in
this process holds at once, one made by another process within the TTL; a refusal is
never remembered."""

from __future__ import annotations

import pytest

from pixelmill.backends.metadata.events import Actor
from pixelmill.errors import NotFound
from pixelmill.runtime.container import Container, model_registry
from pixelmill.services.inference.grants import PredictGrants
from pixelmill.services.model_registry import Caller


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def private_model(container: Container) -> tuple[Caller, Caller]:
    """Model ``private`` managed by its owner; returns (owner, a reader granted 'read')."""
    owner = container.users.create("owner", site_role="member")
    reader = container.users.create("reader", site_role="member")
    shipped = container.models.ensure_default()
    assert shipped is not None
    container.models.register(
        container.models.artifact(shipped),
        name="private",
        input_spec=shipped.input_spec,
        actor=owner.id,
        manager=owner.id,
    )
    manager = Caller(owner.id, False)
    container.models.grant(manager, "private", reader.id, "read", actor=Actor(owner.id))
    return manager, Caller(reader.id, False)


def test_a_revocation_in_this_process_holds_at_once(container: Container) -> None:
    manager, reader = private_model(container)
    grants = PredictGrants(container.models, ttl=60, clock=Clock())
    grants.authorize(reader, "private")  # allowed, and remembered
    container.models.revoke(manager, "private", reader.user_id, actor=Actor(manager.user_id))
    with pytest.raises(NotFound):
        grants.authorize(reader, "private")


def test_a_revocation_by_another_process_holds_within_the_ttl(container: Container) -> None:
    manager, reader = private_model(container)
    elsewhere = model_registry(container.db, container.storage)  # another process's view
    clock = Clock()
    grants = PredictGrants(container.models, ttl=2, clock=clock)
    grants.authorize(reader, "private")
    elsewhere.revoke(manager, "private", reader.user_id, actor=Actor(manager.user_id))
    clock.now = 1.9  # still remembered: this process could not know
    grants.authorize(reader, "private")
    clock.now = 2.1  # the TTL has passed: asked again, and refused
    with pytest.raises(NotFound):
        grants.authorize(reader, "private")


def test_a_refusal_is_never_remembered(container: Container) -> None:
    manager, _ = private_model(container)
    stranger = container.users.create("stranger", site_role="member")
    elsewhere = model_registry(container.db, container.storage)
    grants = PredictGrants(container.models, ttl=60, clock=Clock())
    with pytest.raises(NotFound):
        grants.authorize(Caller(stranger.id, False), "private")
    elsewhere.grant(manager, "private", stranger.id, "read", actor=Actor(manager.user_id))
    grants.authorize(Caller(stranger.id, False), "private")  # at once, no TTL to wait


def test_ttl_zero_asks_every_time(container: Container) -> None:
    manager, reader = private_model(container)
    elsewhere = model_registry(container.db, container.storage)
    grants = PredictGrants(container.models, ttl=0)
    grants.authorize(reader, "private")
    elsewhere.revoke(manager, "private", reader.user_id, actor=Actor(manager.user_id))
    with pytest.raises(NotFound):
        grants.authorize(reader, "private")
