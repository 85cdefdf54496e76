"""Model registry rules, independent of storage: names, references, rollback, comparison.

A model has immutable, numbered versions and movable aliases. References::

    nuclei@production   the version the alias points at
    nuclei:3            version 3
    nuclei:latest       the newest version
    nuclei              nuclei@production, or the newest version when there is no
                        production alias

Promote and rollback are alias moves; every move is an audit entry. Rollback undoes
the last promotion of the alias: it returns to the version the alias pointed at before
it was promoted to the current one (repeatable, walking back through promotions). A
rollback to a named version goes only to one the alias held before (its history).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pixelmill.errors import Conflict, InvalidParameter

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
DEFAULT_ALIAS = "production"
#: the highest version number (the metadata columns are 32-bit integers)
MAX_VERSION = 2**31 - 1


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidParameter(
            f"invalid model name {name!r}: lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, at most 100"
        )
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS.match(alias) or alias == "latest":
        raise InvalidParameter(
            f"invalid alias {alias!r}: lowercase letters, digits, '_' or '-', starting with "
            "a letter, at most 64 ('latest' is reserved)"
        )
    return alias


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: exactly one of ``version`` / ``alias`` / ``latest`` is used;
    neither means "production, else latest"."""

    name: str
    version: int | None = None
    alias: str | None = None
    latest: bool = False

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return f"{self.name}:latest" if self.latest else self.name


def parse_ref(text: str) -> ModelRef:
    """Parse ``name``, ``name@alias``, ``name:N`` or ``name:latest``."""
    if not isinstance(text, str) or not text:
        raise InvalidParameter("a model reference is 'name', 'name@alias' or 'name:version'")
    if "@" in text:
        name, _, alias = text.partition("@")
        return ModelRef(check_name(name), alias=check_alias(alias))
    if ":" in text:
        name, _, version = text.partition(":")
        if version == "latest":
            return ModelRef(check_name(name), latest=True)
        digits = version.isascii() and version.isdigit() and len(version) <= 10
        if not digits or not 1 <= int(version) <= MAX_VERSION:
            raise InvalidParameter(
                f"invalid version {version[:20]!r} in {text[:140]!r}: a number from 1 to "
                f"{MAX_VERSION}"
            )
        return ModelRef(check_name(name), version=int(version))
    return ModelRef(check_name(text))


class AuditEntry(Protocol):
    @property
    def action(self) -> str: ...
    @property
    def alias(self) -> str | None: ...
    @property
    def from_version(self) -> int | None: ...
    @property
    def to_version(self) -> int | None: ...


def rollback_target(audit: Sequence[AuditEntry], alias: str, current: int) -> int:
    """The version ``alias`` pointed at before it was last promoted to ``current``.

    ``audit`` is oldest first. Raises Conflict when there is nothing to go back to.
    """
    for entry in reversed(audit):
        if entry.alias == alias and entry.action == "promote" and entry.to_version == current:
            if entry.from_version is None:
                break
            return entry.from_version
    raise Conflict(f"alias {alias!r} has no earlier version to roll back to", alias=alias)


def held_versions(audit: Sequence[AuditEntry], alias: str) -> set[int]:
    """Every version ``alias`` has pointed at, by its audited moves (promotions,
    rollbacks, removal)."""
    held: set[int] = set()
    for entry in audit:
        if entry.alias == alias:
            held.update(v for v in (entry.from_version, entry.to_version) if v is not None)
    return held


def check_rollback_to(audit: Sequence[AuditEntry], name: str, alias: str, version: int) -> int:
    """``version``, when ``alias`` held it before: a rollback only goes back through the
    alias's history. Any other version is a promotion (through its gate): 409."""
    if version not in held_versions(audit, alias):
        raise Conflict(
            f"{name}@{alias} never pointed at version {version}: a rollback only goes back to "
            f"a version the alias held; promote it instead (PUT /v1/models/{name}/aliases/"
            f"{alias}), which passes the alias's promotion gate",
            alias=alias,
            version=version,
        )
    return version


def compare(versions: Iterable[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Side-by-side metrics: ``{"versions": [...], "metrics": {name: {version: value}},
    "best": {name: version}}``; lower is better for names containing "loss"."""
    table: dict[str, dict[int, float]] = {}
    order = []
    for version, metrics in versions:
        order.append(version)
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                table.setdefault(key, {})[version] = float(value)
    best: dict[str, int] = {}
    for key, vals in table.items():
        pick = min if "loss" in key else max
        best[key] = pick(vals, key=vals.__getitem__)
    return {
        "versions": order,
        "metrics": {k: {str(v): x for v, x in vals.items()} for k, vals in sorted(table.items())},
        "best": best,
    }
