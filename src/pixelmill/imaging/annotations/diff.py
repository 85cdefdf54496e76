"""What changed between two versions of an annotation, for its history.

Both versions are plain mappings (a stored version, or :func:`~.geojson.to_feature` of
an :class:`~.geojson.Annotation`). Objects are compared member by member down to the
leaves, each named by its JSON Pointer; a geometry and any array (a colour, coordinates) is one value, so a moved
polygon is one ``geometry`` change rather than thousands of coordinate changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict

#: members compared as one value even though they are objects
ATOMIC = frozenset({"geometry", "nucleusGeometry"})

_MISSING: Any = object()


class Change(TypedDict):
    """One change: ``path`` is the member's JSON Pointer (RFC 6901), e.g.
    ``/properties/classification/name`` (QuPath measurement names hold dots)."""

    path: str
    op: Literal["added", "removed", "changed"]
    old: Any
    new: Any


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Changes from ``old`` to ``new``, sorted by path; empty when they are equal.

    ``old`` is ``None`` in an ``added`` change and ``new`` is ``None`` in a ``removed``.

    >>> diff({"properties": {"name": "a", "isLocked": False}}, {"properties": {"name": "b"}})
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'path': '/properties/isLocked', 'op': 'removed', 'old': False, 'new': None},
     {'path': '/properties/name', 'op': 'changed', 'old': 'a', 'new': 'b'}]
    """
    changes: list[Change] = []
    _walk(old, new, "", changes)
    return sorted(changes, key=lambda c: c["path"])


def _walk(old: Any, new: Any, path: str, out: list[Change], leaf: str = "") -> None:
    if isinstance(old, Mapping) and isinstance(new, Mapping) and leaf not in ATOMIC:
        for key in old.keys() | new.keys():
            child = path + "/" + str(key).replace("~", "~0").replace("/", "~1")
            _walk(old.get(key, _MISSING), new.get(key, _MISSING), child, out, str(key))
        return
    if old is _MISSING:
        out.append({"path": path, "op": "added", "old": None, "new": new})
    elif new is _MISSING:
        out.append({"path": path, "op": "removed", "old": old, "new": None})
    elif not _same(old, new):
        out.append({"path": path, "op": "changed", "old": old, "new": new})


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python, but a flag that became a number is a change
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


__all__ = ["ATOMIC", "Change", "diff"]
