"""Job kinds used by the job tests, loaded by test workers through the ``jobs.plugins``
setting (``PIXELMILL_JOBS__PLUGINS='["tests.jobs_kinds"]'``).

They exercise the real job machinery with behaviours no production kind should have
on purpose: sleeping (to be killed mid-run), running until the test opens a gate,
crashing the worker process, failing a given number of times, exceeding a step time
limit, producing artifacts.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pixelmill.errors import InvalidParameter
from pixelmill.services.jobs import Job, JobContext, JobKind, SubmitContext, register_kind


class SleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(1.0, ge=0, le=60)
    fail_first: int = Field(0, ge=0, description="Raise RuntimeError on the first N attempts.")
    queue: str = "transform"


def _sleep(job: Job, ctx: JobContext) -> dict[str, Any]:
    params = SleepParams.model_validate(job.params)
    if ctx.task.attempt <= params.fail_first:
        raise RuntimeError(f"transient failure on attempt {ctx.task.attempt}")
    steps = max(1, int(params.seconds / 0.05))
    for i in range(steps):
        ctx.raise_if_cancelled()
        time.sleep(params.seconds / steps)
        ctx.progress((i + 1) / steps, f"slept {i + 1}/{steps}")
    return {"slept": params.seconds, "attempt": ctx.task.attempt, "pid": os.getpid()}


def _sleep_queue(params: SleepParams) -> Any:
    return params.queue


class FirstSlowParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first_s: float = Field(60.0, ge=0, le=600, description="How long the first attempt runs.")
    then_s: float = Field(0.2, ge=0, le=60, description="How long any later attempt runs.")


def _first_slow(job: Job, ctx: JobContext) -> dict[str, Any]:
    # the first attempt outlasts a partition of its worker; the redelivered one is quick
    params = FirstSlowParams.model_validate(job.params)
    seconds = params.first_s if ctx.task.attempt == 1 else params.then_s
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ctx.raise_if_cancelled()
        time.sleep(0.05)
    return {"attempt": ctx.task.attempt, "pid": os.getpid()}


class GateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="Run until this file exists.")
    max_s: float = Field(60.0, ge=0, le=600, description="Fail after this long without it.")


def _gate(job: Job, ctx: JobContext) -> dict[str, Any]:
    # runs until the test opens the gate: as long as the test needs it, no guessed time
    params = GateParams.model_validate(job.params)
    end = time.monotonic() + params.max_s
    while not os.path.exists(params.path):
        ctx.raise_if_cancelled()
        if time.monotonic() > end:
            raise RuntimeError(f"the gate {params.path} never opened")
        time.sleep(0.02)
    return {"pid": os.getpid()}


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _poison(job: Job, ctx: JobContext) -> None:
    # a task that takes its worker down every time (like a segfault or the OOM killer)
    os.kill(os.getpid(), signal.SIGKILL)


def _always_fails(job: Job, ctx: JobContext) -> None:
    raise RuntimeError("this task always fails")


class SlowStepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit_s: float = 0.2
    seconds: float = 3.0


def _slow_step(job: Job, ctx: JobContext) -> None:
    params = SlowStepParams.model_validate(job.params)
    with ctx.step("busy loop", time_limit_s=params.limit_s):
        end = time.monotonic() + params.seconds
        while time.monotonic() < end:
            time.sleep(0.01)


def _artifacts(job: Job, ctx: JobContext) -> dict[str, Any]:
    import pyarrow as pa

    image = ctx.task.input or "none"
    ctx.put_artifact("cells", [{"label": 1, "area": 10.5}, {"label": 2, "area": 3.0}])
    ctx.put_artifact("summary", {"count": 2, "image": image})
    ctx.put_artifact("table", pa.table({"label": [1, 2, 3], "area": [1.0, 2.0, 3.5]}))
    ctx.put_artifact("raw", b"\x00\x01binary")
    return {"cells": 2}


class CheckedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def _check(params: CheckedParams, submit: SubmitContext) -> None:
    if params.name != "ok":
        raise InvalidParameter("name must be 'ok'", field="params.name")


register_kind(
    JobKind(
        name="test.sleep",
        params=SleepParams,
        queue=_sleep_queue,
        run=_sleep,
        summary="Sleep (for tests).",
    )
)
register_kind(JobKind(name="test.firstslow", params=FirstSlowParams, run=_first_slow))
register_kind(JobKind(name="test.gate", params=GateParams, run=_gate, queue="transform"))
register_kind(JobKind(name="test.poison", params=NoParams, run=_poison, queue="transform"))
register_kind(JobKind(name="test.fail", params=NoParams, run=_always_fails, queue="transform"))
register_kind(JobKind(name="test.slowstep", params=SlowStepParams, run=_slow_step))
register_kind(
    JobKind(
        name="test.artifacts", params=NoParams, run=_artifacts, fan_out="per_input", min_inputs=1
    )
)
register_kind(
    JobKind(
        name="test.checked",
        params=CheckedParams,
        run=lambda job, ctx: {"ok": True},
        validate=_check,
    )
)
