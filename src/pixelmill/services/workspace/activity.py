"""What a study's members see of its event log, on the activity feed and the live
stream alike: permission denials and admins' reads are not shown, a security event
(a role change, a denial) shows no ``before`` or ``after``, and the credential (the
API key id) and address of the actor stay in the admins' audit log."""

from __future__ import annotations

from typing import Any, Final

from pixelmill.backends.metadata.events import EventRecord

#: actions members never see (they stay in the audit log)
HIDDEN: Final = ("denied.", "admin.read")


def member_event(event: EventRecord, actors: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The event as a member sees it (``None``: not shown); ``actors``: the public
    identity of each actor, by user id."""
    if event.action.startswith(HIDDEN):
        return None
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "study_id": event.study_id,
        "actor_id": event.actor_id,
        "actor": actors.get(event.actor_id or ""),
        "security": event.security,
        "before": None if event.security else event.before,
        "after": None if event.security else event.after,
    }
