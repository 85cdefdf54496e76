"""The job and task state machine, written once: which state may move to which.

Every job store guards its transitions with this table and the services ask it rather
than keep state lists of their own::

    job:   queued ──► running ──► succeeded | failed | cancelled
             └──────────────────────────────► failed | cancelled
    task:  queued ──► running ──► succeeded | failed | cancelled
             │          ├──► running   (a redelivery restarts it: one more attempt)
             │          └──► queued    (a retry waits for its turn again)
             └──────────────────────────────► failed | cancelled

A job goes ``queued → failed`` when its only task is dead-lettered before it ever ran,
and ``queued → cancelled`` when cancelled before any task started; it never *succeeds*
without a task having run. Terminal states are final for jobs and tasks alike: that is
what makes a redelivered message harmless (its transition matches no row).
"""

from __future__ import annotations

from typing import Literal

State = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Kind = Literal["job", "task"]

STATES: tuple[State, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
#: states a job or task is still going in
ACTIVE: tuple[State, ...] = ("queued", "running")
#: states a job or task ends in; none of them moves again
TERMINAL: tuple[State, ...] = ("succeeded", "failed", "cancelled")

#: kind -> state -> the states it may move to (a state listed as its own successor
#: may "move" to itself: a running task that is started again counts an attempt)
TRANSITIONS: dict[Kind, dict[State, frozenset[State]]] = {
    "job": {
        "queued": frozenset({"running", "failed", "cancelled"}),
        "running": frozenset({"succeeded", "failed", "cancelled"}),
        "succeeded": frozenset(),
        "failed": frozenset(),
        "cancelled": frozenset(),
    },
    "task": {
        "queued": frozenset({"running", "failed", "cancelled"}),
        "running": frozenset({"queued", "running", "succeeded", "failed", "cancelled"}),
        "succeeded": frozenset(),
        "failed": frozenset(),
        "cancelled": frozenset(),
    },
}


_MOVES: frozenset[tuple[str, str, str]] = frozenset(
    (kind, old, new)
    for kind, table in TRANSITIONS.items()
    for old, nexts in table.items()
    for new in nexts
)


def can_move(kind: Kind, old: str, new: str) -> bool:
    """Whether a ``kind`` (job or task) in state ``old`` may move to ``new``."""
    return (kind, old, new) in _MOVES


def sources(kind: Kind, new: State) -> tuple[State, ...]:
    """The states a ``kind`` may move to ``new`` from, in :data:`STATES` order: the
    ``WHERE state IN (...)`` guard of that transition."""
    return tuple(old for old in STATES if new in TRANSITIONS[kind][old])


def job_outcome(failed: int, cancelled: int) -> State:
    """How a job ends once every task finished: ``succeeded`` only if all of them did
    (``failed`` and ``cancelled`` count its tasks that did not)."""
    return "succeeded" if failed == cancelled == 0 else "failed"


def is_terminal(state: str) -> bool:
    """True for a state nothing moves out of (succeeded, failed, cancelled)."""
    return state in TERMINAL
