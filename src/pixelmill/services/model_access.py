"""Who may do what with a registered model: each user's level on it (read, edit,
manage, as MLflow has them), site admins, and the shipped model readable by all. The
registry (:class:`pixelmill.services.model_registry.ModelRegistry`) is built on it."""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from pixelmill.backends.metadata.events import Actor, EventLog
from pixelmill.backends.metadata.model_permissions import (
    ModelPermissionRepository,
    PermissionRecord,
)
from pixelmill.backends.metadata.models import ModelRepository
from pixelmill.errors import Forbidden, InvalidParameter, NotFound
from pixelmill.ml import registry_rules as rules
from pixelmill.services.workspace.model_rules import (
    LEVELS,
    NEEDS,
    ModelAction,
    ModelLevel,
    effective_level,
    model_can,
)
from pixelmill.services.workspace.model_rules import level_at_least as level_ok
from pixelmill.services.workspace.principal import Principal

#: the shipped default model (inside the package)
DEFAULT_MODEL = "nuclei"


@dataclass(frozen=True)
class Caller:
    """Who acts on the registry: a user id (``''``: nobody in particular, with
    authentication off) and whether they are a site admin."""

    user_id: str
    is_admin: bool

    @classmethod
    def of(cls, principal: Principal | None) -> Caller:
        if principal is None:
            return cls("", False)
        return cls(principal.user_id, principal.is_admin or principal.via == "local")


class ModelAccess:
    """The permission half of the registry (``models``, ``permissions`` and ``events`` are
    set by the registry's constructor)."""

    models: ModelRepository
    permissions: ModelPermissionRepository
    events: EventLog

    def level(self, caller: Caller, name: str) -> ModelLevel | None:
        """The caller's level on ``name`` (``manage`` for admins), the shipped model
        being readable by all."""
        if caller.is_admin:
            return "manage"
        granted = self.permissions.level(name, caller.user_id)
        return effective_level(granted, shipped=name == DEFAULT_MODEL)  # type: ignore[arg-type]

    def authorize(self, caller: Caller, name: str, action: ModelAction) -> bool:
        """Raise ``404`` when the caller may not read ``name`` (exactly as for a model
        that does not exist) and ``403`` when they may read it but not take ``action``.
        Returns whether the model exists: registering a new name is open to all."""
        try:
            self.models.get_model(name)
        except NotFound:
            if action == "model.register":
                return False
            raise
        level = self.level(caller, name)
        shipped = name == DEFAULT_MODEL
        if not model_can(level, "model.read", is_admin=caller.is_admin, shipped=shipped):
            raise NotFound(f"no model {name!r}")
        if not model_can(level, action, is_admin=caller.is_admin, shipped=shipped):
            why = (
                "only a site admin may delete the shipped model's versions or aliases"
                if shipped and action == "model.delete" and level_ok(level, NEEDS[action])
                else f"your level on model {name!r} is {level!r}; {NEEDS[action]!r} is needed"
            )
            self.events.record(
                Actor(caller.user_id or None),
                "denied." + action,
                "model",
                name,
                after={"level": level},
                security=True,
            )
            raise Forbidden(why)
        return True

    def check_use(self, caller: Caller, ref: str) -> None:
        """404 unless the caller may predict with the model ``ref`` names (a job's
        ``segment`` step)."""
        self.authorize(caller, rules.parse_ref(ref).name, "model.predict")

    def readable(self, caller: Caller) -> set[str] | None:
        """The names the caller may read (``None``: all of them)."""
        if caller.is_admin:
            return None
        return {*self.permissions.levels(caller.user_id), DEFAULT_MODEL}

    def grants(self, caller: Caller, name: str) -> builtins.list[PermissionRecord]:
        self.authorize(caller, name, "model.read")
        return self.permissions.list(name)

    def grant(
        self, caller: Caller, name: str, user_id: str, level: str, *, actor: Actor
    ) -> PermissionRecord:
        if level not in LEVELS:
            raise InvalidParameter(f"level is one of {', '.join(LEVELS)}, not {level!r}")
        self.authorize(caller, name, "model.grant")
        return self.permissions.set(
            name, user_id, level, actor=actor, keep_manager=not caller.is_admin
        )

    def revoke(self, caller: Caller, name: str, user_id: str, *, actor: Actor) -> None:
        self.authorize(caller, name, "model.grant")
        self.permissions.delete(name, user_id, actor=actor, keep_manager=not caller.is_admin)
