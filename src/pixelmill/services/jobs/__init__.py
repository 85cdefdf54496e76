"""Asynchronous jobs: submit work, run it on workers through a broker, watch it finish.

Public API (see docs/jobs.md): the job-kind extension point (:class:`JobKind`,
:class:`JobKinds`, :func:`register_kind` for plugins, the handler's :class:`JobContext`).
The gateway and other services submit, read and cancel jobs through
:class:`~pixelmill.services.jobs.service.JobService`; processes that run jobs also start
a :class:`~pixelmill.services.jobs.daemon.JobDaemon`.
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
    JobKind,
    JobKinds,
    load_plugins,
    register_kind,
)

__all__ = [
    "Job",
    "JobCancelled",
    "JobContext",
    "JobKind",
    "JobKinds",
    "StepTimeLimitExceeded",
    "SubmitContext",
    "Task",
    "load_plugins",
    "register_kind",
]
