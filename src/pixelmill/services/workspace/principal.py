"""Who is asking: a user, through an API key or a browser session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["read", "write", "admin"]
SiteRole = Literal["admin", "member"]
_RANK: dict[Scope, int] = {"read": 0, "write": 1, "admin": 2}


@dataclass(frozen=True)
class Principal:
    """A user acting through one credential.

    ``scope`` is what the credential allows (a key's role, capped by its user's site
    role: a member's admin key acts as ``write``; a session has its user's full scope).
    ``user_id`` owns what it creates; ``''`` only for :data:`LOCAL`."""

    user_id: str
    username: str
    site_role: SiteRole
    scope: Scope
    key_id: str | None = None
    via: Literal["key", "session", "local"] = "key"

    @property
    def is_admin(self) -> bool:
        """A site admin acting with admin scope: sees and may manage everything."""
        return self.site_role == "admin" and self.scope == "admin"

    def allows(self, scope: Scope) -> bool:
        return _RANK[self.scope] >= _RANK[scope]

    def owns(self, owner_id: str | None) -> bool:
        return bool(self.user_id) and owner_id == self.user_id


def key_scope(key_role: str, site_role: SiteRole) -> Scope:
    """A key's role capped by its user's site role."""
    if key_role == "admin" and site_role != "admin":
        return "write"
    return "read" if key_role == "read" else "write" if key_role == "write" else "admin"


def session_scope(site_role: SiteRole) -> Scope:
    return "admin" if site_role == "admin" else "write"


#: Authentication switched off (``security.auth_enabled=false``, a trusted single-user
#: setup): everything is allowed and nothing is owned.
LOCAL = Principal(user_id="", username="local", site_role="admin", scope="admin", via="local")
