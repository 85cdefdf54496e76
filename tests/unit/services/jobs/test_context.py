"""A task's cancellation check: cached for half a second, except when asked fresh
(before a step that cannot be undone, such as moving a model alias)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pixelmill.services.jobs.context import Job, JobCancelled, JobContext, Task


class Host:
    """The runner's side: the job is cancelled once ``cancel()`` ran; counts DB checks."""

    def __init__(self) -> None:
        self.is_cancelled_now = False
        self.checks = 0

    def is_cancelled(self) -> bool:
        self.checks += 1
        return self.is_cancelled_now

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the context called {name}")


def context(host: Host) -> JobContext:
    job = Job("j1", "train", {}, (), "training", 0, "alice", datetime.now(UTC))
    return JobContext(job=job, task=Task(0, None, 1), host=host)  # type: ignore[arg-type]


def test_a_cancellation_inside_the_cache_window_is_seen_only_when_asked_fresh() -> None:
    # given a running task that has just checked (not cancelled)
    host = Host()
    ctx = context(host)
    assert ctx.cancelled(fresh=True) is False
    # when the job is cancelled a moment later
    host.is_cancelled_now = True
    # then the cached answer still says running, and no DB check is made for it
    checks = host.checks
    assert ctx.cancelled() is False
    assert host.checks == checks
    # but a fresh check sees the cancellation, raises, and it sticks
    with pytest.raises(JobCancelled):
        ctx.raise_if_cancelled(fresh=True)
    assert ctx.cancelled() is True
