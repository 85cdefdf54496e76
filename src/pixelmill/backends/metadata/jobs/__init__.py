"""The job store family: jobs, their tasks and events, with guarded transitions.

* :mod:`.base` — the :class:`JobStore` Protocol and the records it deals in;
* :mod:`.states` — the state machine, one table of allowed transitions;
* :mod:`.sql` (+ :mod:`.sql_transitions`, :mod:`.pg_statements`) — SQLite and
  PostgreSQL, :class:`JobRepository`;
* :mod:`.memory` — :class:`MemoryJobStore`, in-process, for tests and tools.

``tests/contract/test_jobs_contract.py`` holds every store to the same behaviour.
"""

from __future__ import annotations

from pixelmill.backends.metadata.jobs.base import (
    Aggregate,
    EventRecord,
    Finish,
    JobRecord,
    JobStore,
    PurgedJob,
    Started,
    TaskRecord,
    TaskRef,
    failure_summary,
    new_job_id,
)
from pixelmill.backends.metadata.jobs.memory import MemoryJobStore
from pixelmill.backends.metadata.jobs.sql import JobRepository
from pixelmill.backends.metadata.jobs.states import (
    ACTIVE,
    TERMINAL,
    State,
    can_move,
    is_terminal,
)

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "Aggregate",
    "EventRecord",
    "Finish",
    "JobRecord",
    "JobRepository",
    "JobStore",
    "MemoryJobStore",
    "PurgedJob",
    "Started",
    "State",
    "TaskRecord",
    "TaskRef",
    "can_move",
    "failure_summary",
    "is_terminal",
    "new_job_id",
]
