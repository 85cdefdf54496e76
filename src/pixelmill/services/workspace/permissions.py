"""Who may do what in a study: one pure rule, :func:`can`, decides everything.

Roles are ordered ``viewer < annotator < analyst < owner``. Each action names the least
role that may take it; some actions on something a member wrote (an annotation, a
message) are open to its author at a lower role than to everyone else. A locked or
archived study is read-only: only its owner may change its status back (and manage
members). Site admins are handled by the caller (they act as an owner, and their reads
of others' data are audited); a non-member is nobody here and gets ``404``.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

StudyRole = Literal["viewer", "annotator", "analyst", "owner"]
StudyStatus = Literal["active", "locked", "archived"]
Action = Literal[
    "study.read",
    "study.update",
    "study.set_status",
    "study.delete",
    "study.export",
    "member.manage",
    "image.read",
    "image.add",
    "image.update",
    "image.remove",
    "patient.read",
    "patient.write",
    "annotation.read",
    "annotation.create",
    "annotation.edit",
    "annotation.delete",
    "analysis.read",
    "analysis.run",
    "analysis.promote",
    "dataset.build",
    "model.train",
    "message.read",
    "message.post",
    "message.edit",
    "message.delete",
    "thread.manage",
    "audit.read",
]

ROLES: Final[tuple[StudyRole, ...]] = get_args(StudyRole)
STATUSES: Final[tuple[StudyStatus, ...]] = get_args(StudyStatus)
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)
_RANK: Final[dict[StudyRole, int]] = {role: rank for rank, role in enumerate(ROLES)}


class Rule:
    """The least role for an action (``None``: nobody but the author); ``author``: the
    least role when it is your own; ``frozen_ok``: allowed in a locked or archived study."""

    __slots__ = ("author", "frozen_ok", "least")

    def __init__(
        self, least: StudyRole | None, *, author: StudyRole | None = None, frozen_ok: bool = False
    ) -> None:
        self.least = least
        self.author = author
        self.frozen_ok = frozen_ok


#: The whole policy, one line an action.
RULES: Final[dict[Action, Rule]] = {
    "study.read": Rule("viewer", frozen_ok=True),
    "study.update": Rule("owner"),
    "study.set_status": Rule("owner", frozen_ok=True),
    "study.delete": Rule("owner", frozen_ok=True),
    "study.export": Rule("analyst", frozen_ok=True),
    "member.manage": Rule("owner", frozen_ok=True),
    "image.read": Rule("viewer", frozen_ok=True),
    "image.add": Rule("analyst"),
    "image.update": Rule("analyst"),
    "image.remove": Rule("owner", author="analyst"),
    "patient.read": Rule("viewer", frozen_ok=True),
    "patient.write": Rule("analyst"),
    "annotation.read": Rule("viewer", frozen_ok=True),
    "annotation.create": Rule("annotator"),
    "annotation.edit": Rule("analyst", author="annotator"),
    "annotation.delete": Rule("analyst", author="annotator"),
    "analysis.read": Rule("viewer", frozen_ok=True),
    "analysis.run": Rule("analyst"),
    "analysis.promote": Rule("annotator"),
    # a training dataset from the study's annotations, and the train-evaluate-promote
    # loop: they read the study without changing it, so a locked study (its annotations
    # final) may train a model
    "dataset.build": Rule("analyst", frozen_ok=True),
    "model.train": Rule("analyst", frozen_ok=True),
    "message.read": Rule("viewer", frozen_ok=True),
    "message.post": Rule("viewer"),
    # only its author edits a message; an owner may remove one (moderation)
    "message.edit": Rule(None, author="viewer"),
    "message.delete": Rule("owner", author="viewer"),
    # rename, resolve or reopen a thread: its author, or an analyst and up
    "thread.manage": Rule("analyst", author="viewer"),
    "audit.read": Rule("owner", frozen_ok=True),
}


def at_least(role: StudyRole, least: StudyRole) -> bool:
    return _RANK[role] >= _RANK[least]


def can(role: StudyRole, action: Action, study_status: StudyStatus, is_author: bool) -> bool:
    """Whether a member with ``role`` may take ``action`` in a study with
    ``study_status``; ``is_author``: the thing acted on is the member's own."""
    rule = RULES[action]
    if study_status != "active" and not rule.frozen_ok:
        return False
    least = rule.author if is_author and rule.author is not None else rule.least
    return least is not None and at_least(role, least)
