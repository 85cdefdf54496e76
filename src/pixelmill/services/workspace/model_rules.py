"""Who may do what with a registered model: one pure rule, :func:`model_can`.

Levels are ordered ``read < edit < manage`` (as MLflow's registered-model permissions):

- ``read``: list, describe, compare, read the audit, predict with it;
- ``edit``: also register new versions (uploads and training runs);
- ``manage``: also move aliases (``production``!), delete versions and aliases, and
  grant or revoke other users' levels.

The user who registers a new model name gets ``manage``; everyone else needs a grant.
Site admins may do everything. The shipped default model is readable by every user and
only an admin may delete its versions or aliases.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

ModelLevel = Literal["read", "edit", "manage"]
ModelAction = Literal[
    "model.read",
    "model.predict",
    "model.register",
    "model.promote",
    "model.delete",
    "model.grant",
]

LEVELS: Final[tuple[ModelLevel, ...]] = get_args(ModelLevel)
MODEL_ACTIONS: Final[tuple[ModelAction, ...]] = get_args(ModelAction)
_RANK: Final[dict[ModelLevel, int]] = {level: rank for rank, level in enumerate(LEVELS)}

#: The least level for each action, one line an action.
NEEDS: Final[dict[ModelAction, ModelLevel]] = {
    "model.read": "read",
    "model.predict": "read",
    "model.register": "edit",
    "model.promote": "manage",
    "model.delete": "manage",
    "model.grant": "manage",
}


def level_at_least(level: ModelLevel | None, least: ModelLevel) -> bool:
    return level is not None and _RANK[level] >= _RANK[least]


def effective_level(granted: ModelLevel | None, *, shipped: bool) -> ModelLevel | None:
    """A user's level on a model: their grant, at least ``read`` on the shipped model."""
    if shipped and not level_at_least(granted, "read"):
        return "read"
    return granted


def model_can(
    level: ModelLevel | None, action: ModelAction, *, is_admin: bool, shipped: bool
) -> bool:
    """Whether a user with ``level`` on a model (``None``: no grant) may take ``action``;
    ``shipped``: the model is pixelmill's shipped default."""
    if is_admin:
        return True
    if shipped and action == "model.delete":
        return False
    return level_at_least(effective_level(level, shipped=shipped), NEEDS[action])
