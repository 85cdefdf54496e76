"""Asynchronous jobs: submit work, run it on workers through a broker, watch it finish.

Public API (see docs/jobs.md): the job-kind extension point (:class:`JobKind`,
:func:`register_kind`, the handler's :class:`JobContext`) and the :class:`JobService`
that the gateway and other services call to submit, read and cancel jobs.
"""

from __future__ import annotations

from pixelmill.services.jobs.context import (
    Job,
    JobCancelled,
    JobContext,
    StepTimeLimitExceeded,
    SubmitContext,
    Task,
)
from pixelmill.services.jobs.kinds import (
    BUILTIN_KINDS,
    JobKind,
    catalogue,
    get_kind,
    kind_names,
    load_plugins,
    register_kind,
)

__all__ = [
    "BUILTIN_KINDS",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobKind",
    "StepTimeLimitExceeded",
    "SubmitContext",
    "Task",
    "catalogue",
    "get_kind",
    "kind_names",
    "load_plugins",
    "register_kind",
]
