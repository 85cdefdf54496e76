"""The study permission matrix: every role x action x status, as an explicit table.

The table is written out by hand (not derived from ``RULES``): a change to the policy
must change this file too. Letters: v viewer, a annotator, n analyst, o owner."""

from __future__ import annotations

import pytest

from pixelmill.services.workspace.permissions import ACTIONS, ROLES, STATUSES, can

_LETTER = {"viewer": "v", "annotator": "a", "analyst": "n", "owner": "o"}

#: action: (roles allowed when active, when locked, when archived), not the author
EXPECTED: dict[str, tuple[str, str, str]] = {
    "study.read": ("vano", "vano", "vano"),
    "study.update": ("o", "", ""),
    "study.set_status": ("o", "o", "o"),
    "study.delete": ("o", "o", "o"),
    "study.export": ("no", "no", "no"),
    "member.manage": ("o", "o", "o"),
    "image.read": ("vano", "vano", "vano"),
    "image.add": ("no", "", ""),
    "image.update": ("no", "", ""),
    "image.remove": ("o", "", ""),
    "patient.read": ("vano", "vano", "vano"),
    "patient.write": ("no", "", ""),
    "annotation.read": ("vano", "vano", "vano"),
    "annotation.create": ("ano", "", ""),
    "annotation.edit": ("no", "", ""),
    "annotation.delete": ("no", "", ""),
    "analysis.read": ("vano", "vano", "vano"),
    "analysis.run": ("no", "", ""),
    "analysis.promote": ("ano", "", ""),
    "dataset.build": ("no", "no", "no"),
    "model.train": ("no", "no", "no"),
    "message.read": ("vano", "vano", "vano"),
    "message.post": ("vano", "", ""),
    "message.edit": ("", "", ""),
    "message.delete": ("o", "", ""),
    "thread.manage": ("no", "", ""),
    "audit.read": ("o", "o", "o"),
}

#: action: roles allowed on their own thing (is_author) when active; frozen: as above
EXPECTED_AUTHOR: dict[str, str] = {
    "image.remove": "no",
    "annotation.edit": "ano",
    "annotation.delete": "ano",
    "message.edit": "vano",
    "message.delete": "vano",
    "thread.manage": "vano",
}

CASES = [(role, action, status) for action in EXPECTED for status in STATUSES for role in ROLES]


def test_the_table_covers_every_action_and_nothing_else() -> None:
    assert set(EXPECTED) == set(ACTIONS)
    assert len(CASES) == len(ROLES) * len(ACTIONS) * len(STATUSES)


@pytest.mark.parametrize(("role", "action", "status"), CASES)
def test_matrix(role: str, action: str, status: str) -> None:
    allowed = EXPECTED[action][STATUSES.index(status)]  # type: ignore[arg-type]
    assert can(role, action, status, False) is (_LETTER[role] in allowed)  # type: ignore[arg-type]


@pytest.mark.parametrize(("role", "action", "status"), CASES)
def test_authors(role: str, action: str, status: str) -> None:
    if status == "active":
        allowed = EXPECTED_AUTHOR.get(action, EXPECTED[action][0])
    else:  # a locked or archived study is read-only, for authors too
        allowed = EXPECTED[action][STATUSES.index(status)]  # type: ignore[arg-type]
    assert can(role, action, status, True) is (_LETTER[role] in allowed)  # type: ignore[arg-type]


def test_only_its_author_edits_a_message_not_even_the_owner() -> None:
    assert not can("owner", "message.edit", "active", False)
    assert can("viewer", "message.edit", "active", True)


def test_a_locked_study_is_read_only_except_for_its_owner_unlocking_it() -> None:
    writes = [a for a in ACTIONS if not a.endswith(".read")]
    owner = {a for a in writes if can("owner", a, "locked", False)}
    # exports and training from annotations read the study without changing it
    reads = {"study.export", "dataset.build", "model.train"}
    assert owner == {"study.set_status", "study.delete", "member.manage", *reads}
    assert {a for a in writes if can("analyst", a, "locked", False)} == reads
    assert not any(can(r, a, "locked", False) for r in ("viewer", "annotator") for a in writes)
