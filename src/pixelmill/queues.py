"""The work queues, in one place: every broker declares them, every job lands on one.

Ordered from the lightest kind of work to the heaviest, so a pipeline whose steps
belong on different queues goes to the heaviest of them (:func:`heaviest`). A worker
process consumes any subset (``pixelmill worker --queues``), which is how heavy work
is kept off the machines that serve fast transforms.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

Queue = Literal["transform", "analyse", "segment", "train"]

#: every queue, lightest first
QUEUES: tuple[Queue, ...] = get_args(Queue)


def heaviest(queues: Iterable[Queue]) -> Queue:
    """The heaviest of ``queues`` (``"transform"`` for none)."""
    return max(queues, key=QUEUES.index, default="transform")
