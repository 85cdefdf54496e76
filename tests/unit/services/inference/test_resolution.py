"""What a cached model reference resolves to: a move made in this process is seen at
once; one made by another process (another registry over the same database) within the
TTL, never later."""

from __future__ import annotations

from pixelmill.runtime.container import Container, model_registry
from pixelmill.services.inference.resolution import ResolvedRefs


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def two_versions(container: Container) -> int:
    """nuclei:1 (shipped, on production) and nuclei:2 (the same bytes); returns 2."""
    shipped = container.models.ensure_default()
    assert shipped is not None
    data = container.models.artifact(shipped)
    second = container.models.register(
        data, name="nuclei", input_spec=shipped.input_spec, actor="test"
    )
    return second.version


def test_a_move_in_this_process_is_seen_at_once(container: Container) -> None:
    newer = two_versions(container)
    clock = Clock()
    refs = ResolvedRefs(container.models, ttl=60, clock=clock)
    assert refs.resolve("nuclei@production").version == 1
    container.models.promote("nuclei", newer, "production", actor="test")
    assert refs.resolve("nuclei@production").version == newer


def test_a_move_by_another_process_is_seen_within_the_ttl(container: Container) -> None:
    newer = two_versions(container)
    elsewhere = model_registry(container.db, container.storage)  # another process's view
    clock = Clock()
    refs = ResolvedRefs(container.models, ttl=2, clock=clock)
    assert refs.resolve("nuclei@production").version == 1
    elsewhere.promote("nuclei", newer, "production", actor="test")
    clock.now = 1.9  # still remembered: this process could not know
    assert refs.resolve("nuclei@production").version == 1
    clock.now = 2.1  # the TTL has passed: resolved again
    assert refs.resolve("nuclei@production").version == newer


def test_ttl_zero_resolves_every_time(container: Container) -> None:
    newer = two_versions(container)
    elsewhere = model_registry(container.db, container.storage)
    refs = ResolvedRefs(container.models, ttl=0)
    assert refs.resolve("nuclei@production").version == 1
    elsewhere.promote("nuclei", newer, "production", actor="test")
    assert refs.resolve("nuclei@production").version == newer
