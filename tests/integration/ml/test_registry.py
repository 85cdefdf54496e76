"""The model registry over a real metadata DB (SQLite, and PostgreSQL when reachable)
and real object storage: immutable numbered versions, aliases, audit, rollback, delete."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixelmill.errors import Conflict, InvalidParameter, NotFound
from pixelmill.runtime.container import Container, build_container
from pixelmill.services.model_registry import ModelRegistry
from tests.conftest import make_settings
from tests.ml_helpers import TinyModel


@pytest.fixture(params=["sqlite", "postgres"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModelRegistry]:
    overrides = {}
    if request.param == "postgres":
        overrides["database"] = {"url": request.getfixturevalue("postgres_url")}
    c: Container = build_container(make_settings(tmp_path, **overrides))
    yield c.models
    c.close()


def register(registry: ModelRegistry, tiny: TinyModel, **kw: object) -> object:
    return registry.register(
        tiny.onnx,
        name="cells",
        input_spec=tiny.spec.model_dump(),
        metrics=kw.pop("metrics", {"dice": 0.5}),  # type: ignore[arg-type]
        actor="tester",
        **kw,  # type: ignore[arg-type]
    )


def test_versions_are_numbered_immutable_and_content_addressed(
    registry: ModelRegistry, tiny_model: TinyModel
) -> None:
    v1 = register(registry, tiny_model, metrics={"dice": 0.5})
    v2 = register(registry, tiny_model, metrics={"dice": 0.7})
    assert (v1.version, v2.version) == (1, 2)  # type: ignore[attr-defined]
    assert v1.sha256 == v2.sha256 == hashlib.sha256(tiny_model.onnx).hexdigest()  # type: ignore[attr-defined]
    # registering again changed nothing about version 1
    again = registry.models.version("cells", 1)
    assert again.metrics == {"dice": 0.5} and again.created_at == v1.created_at  # type: ignore[attr-defined]
    assert registry.artifact(again) == tiny_model.onnx
    assert registry.resolve("cells:latest").version == 2
    assert registry.resolve("cells").version == 2  # no production alias: the newest
    assert registry.compare("cells")["best"]["dice"] == 2


def test_promote_rollback_and_audit_trail(registry: ModelRegistry, tiny_model: TinyModel) -> None:
    for _ in range(3):
        register(registry, tiny_model)
    registry.promote("cells", 1, "production", actor="alice")
    registry.promote("cells", 3, "production", actor="bob")
    registry.promote("cells", 2, "staging", actor="bob")
    assert registry.resolve("cells@production").version == 3
    assert registry.resolve("cells").version == 3  # bare name = production
    registry.rollback("cells", "production", actor="carol")
    assert registry.resolve("cells@production").version == 1
    with pytest.raises(Conflict):
        registry.rollback("cells", "production", actor="carol")  # nothing before 1
    moves = [
        (a.action, a.alias, a.from_version, a.to_version, a.actor)
        for a in registry.audit("cells")
        if a.alias
    ]
    assert moves == [
        ("promote", "production", None, 1, "alice"),
        ("promote", "production", 1, 3, "bob"),
        ("promote", "staging", None, 2, "bob"),
        ("rollback", "production", 3, 1, "carol"),
    ]


def test_a_rollback_to_a_version_goes_only_where_the_alias_has_been(
    registry: ModelRegistry, tiny_model: TinyModel
) -> None:
    for _ in range(3):
        register(registry, tiny_model)
    registry.promote("cells", 1, "production", actor="alice")
    registry.promote("cells", 2, "production", actor="alice")
    # version 3 never held production: going there is a promotion (through its gate)
    with pytest.raises(Conflict, match="promote it instead"):
        registry.rollback("cells", "production", actor="bob", to_version=3)
    assert registry.resolve("cells@production").version == 2
    # a version it held is a rollback, as before
    assert registry.rollback("cells", "production", actor="bob", to_version=1).version == 1
    assert registry.rollback("cells", "production", actor="bob", to_version=2).version == 2
    moves = [(a.action, a.from_version, a.to_version) for a in registry.audit("cells") if a.alias]
    assert moves[-2:] == [("rollback", 2, 1), ("rollback", 1, 2)]


def test_delete_is_refused_while_aliased(registry: ModelRegistry, tiny_model: TinyModel) -> None:
    v1 = register(registry, tiny_model)
    register(registry, tiny_model)
    registry.promote("cells", 1, "production", actor="t")
    with pytest.raises(Conflict, match="production"):
        registry.delete_version("cells", 1, actor="t")
    registry.delete_version("cells", 2, actor="t")
    assert registry.storage.exists(v1.storage_key)  # type: ignore[attr-defined]  # still used by v1
    registry.promote("cells", 1, "production", actor="t")
    registry.delete_alias("cells", "production", actor="t")
    registry.delete_version("cells", 1, actor="t")
    assert not registry.storage.exists(v1.storage_key)  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        registry.resolve("cells:1")
    assert register(registry, tiny_model).version == 3  # type: ignore[attr-defined]  # numbers are never reused


def test_unknown_refs_and_bad_artifacts(registry: ModelRegistry, tiny_model: TinyModel) -> None:
    for ref in ("ghost", "ghost@production", "ghost:1"):
        with pytest.raises(NotFound):
            registry.resolve(ref)
    register(registry, tiny_model)
    with pytest.raises(NotFound):
        registry.resolve("cells@staging")
    with pytest.raises(NotFound):
        registry.resolve("cells:5")
    with pytest.raises(InvalidParameter):
        registry.promote("cells", 1, "Bad Alias", actor="t")
    with pytest.raises(NotFound):
        registry.promote("cells", 9, "production", actor="t")
    from pixelmill.errors import InvalidInput

    with pytest.raises(InvalidInput):
        registry.register(b"not onnx", name="cells", input_spec={}, actor="t")


def test_shipped_default_model_registers_once(registry: ModelRegistry) -> None:
    first = registry.ensure_default()
    assert first is not None, "the shipped nuclei model is missing from the package"
    again = registry.ensure_default()
    assert again.version == first.version and len(registry.models.versions("nuclei")) == 1
    assert registry.resolve("nuclei@production").version == first.version
    card = registry.resolve("nuclei@production").card
    assert card["command"].startswith("pixelmill train") and card["metrics"]["dice"] > 0.8


@pytest.mark.parametrize("moved_by_user", [False, True])
def test_an_upgrade_moves_production_to_the_new_shipped_model_unless_a_user_chose(
    registry: ModelRegistry, tiny_model: TinyModel, moved_by_user: bool
) -> None:
    from pixelmill.services.model_registry import SHIPPED_BY

    # given an install whose production alias points at an older shipped nuclei model
    old = registry.register(
        tiny_model.onnx, name="nuclei", input_spec=tiny_model.spec.model_dump(), actor=SHIPPED_BY
    )
    registry.promote("nuclei", old.version, "production", actor=SHIPPED_BY)
    if moved_by_user:  # ... or that a user put there themselves
        registry.promote("nuclei", old.version, "production", actor="alice")
    # when a new pixelmill with a new shipped model starts
    shipped = registry.ensure_default()
    assert shipped is not None and shipped.version != old.version
    production = registry.resolve("nuclei@production").version
    if moved_by_user:  # then a user's choice is kept
        assert production == old.version
    else:  # then the alias pixelmill set follows the new model, and the audit says so
        assert production == shipped.version
        last = registry.audit("nuclei")[-1]
        assert last.actor == SHIPPED_BY and last.alias == "production"
