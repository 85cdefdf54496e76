"""The model registry rule: levels read < edit < manage, per action, as a table."""

from __future__ import annotations

import pytest

from pixelmill.services.workspace.model_rules import MODEL_ACTIONS, model_can

#: action: (no grant, read, edit, manage) -> allowed, on a user's own / shared model
TABLE: dict[str, tuple[bool, bool, bool, bool]] = {
    "model.read": (False, True, True, True),
    "model.predict": (False, True, True, True),
    "model.register": (False, False, True, True),
    "model.promote": (False, False, False, True),
    "model.delete": (False, False, False, True),
    "model.grant": (False, False, False, True),
}
#: the shipped model: everyone reads it; only admins delete its versions and aliases
SHIPPED: dict[str, tuple[bool, bool, bool, bool]] = {
    "model.read": (True, True, True, True),
    "model.predict": (True, True, True, True),
    "model.register": (False, False, True, True),
    "model.promote": (False, False, False, True),
    "model.delete": (False, False, False, False),
    "model.grant": (False, False, False, True),
}
LEVELS = (None, "read", "edit", "manage")


def test_the_table_covers_every_action() -> None:
    assert set(TABLE) == set(SHIPPED) == set(MODEL_ACTIONS)


@pytest.mark.parametrize("action", MODEL_ACTIONS)
@pytest.mark.parametrize("index", range(4))
def test_levels(action: str, index: int) -> None:
    level = LEVELS[index]
    assert model_can(level, action, is_admin=False, shipped=False) is TABLE[action][index]  # type: ignore[arg-type]
    assert model_can(level, action, is_admin=False, shipped=True) is SHIPPED[action][index]  # type: ignore[arg-type]


@pytest.mark.parametrize("action", MODEL_ACTIONS)
def test_site_admins_may_do_everything_even_delete_the_shipped_model(action: str) -> None:
    assert model_can(None, action, is_admin=True, shipped=True)  # type: ignore[arg-type]
    assert model_can(None, action, is_admin=True, shipped=False)  # type: ignore[arg-type]
