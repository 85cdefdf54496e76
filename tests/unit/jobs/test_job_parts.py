"""Pure parts of the job system: per-step time limits, dead-letter reasons, artifact
aggregation, the kind registry, the listeners of ended jobs."""

from __future__ import annotations

import sys
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from pixelmill.backends.broker.rabbitmq_dead_letters import dead_letter_reason
from pixelmill.backends.storage.memory import MemoryStorage
from pixelmill.errors import Conflict, InvalidParameter
from pixelmill.services.jobs import (
    JobKind,
    JobKinds,
    StepTimeLimitExceeded,
    artifacts,
    register_kind,
)
from pixelmill.services.jobs.deadline import Watchdog
from pixelmill.services.jobs.deps import FinishedJobs


def test_a_block_over_its_time_limit_is_interrupted_with_the_step_name() -> None:
    watchdog = Watchdog()
    started = time.monotonic()
    expected = r"decode exceeded its time limit of 0\.1 s"
    with pytest.raises(StepTimeLimitExceeded, match=expected), watchdog.limit("decode", 0.1):
        while True:
            time.sleep(0.005)
    assert time.monotonic() - started < 1.0


def test_a_block_within_its_limit_runs_normally_and_leaves_nothing_pending() -> None:
    watchdog = Watchdog()
    with watchdog.limit("quick", 0.5):
        time.sleep(0.01)
    time.sleep(0.1)  # a stray exception would land here
    with watchdog.limit("none", None):
        time.sleep(0.01)


def test_nested_limits_fire_the_innermost_expired_one() -> None:
    watchdog = Watchdog()
    with (
        pytest.raises(StepTimeLimitExceeded, match="inner"),
        watchdog.limit("outer", 5.0),
        watchdog.limit("inner", 0.05),
    ):
        for _ in range(400):
            time.sleep(0.005)


@pytest.mark.parametrize(
    ("headers", "options", "expected"),
    [
        (
            {"x-death": [{"reason": b"delivery_limit"}], "x-delivery-count": 2},
            {},
            "delivered 3 times without finishing: the worker died each time (delivery limit)",
        ),
        (
            {"x-death": [{"reason": "rejected"}]},
            {"retries": 4, "traceback": "Traceback...\nRuntimeError: boom\n"},
            "gave up after 5 attempts: RuntimeError: boom",
        ),
        ({"x-death": [{"reason": "expired"}]}, {}, "dead-lettered (expired)"),
        (None, {}, "dead-lettered (unknown reason)"),
    ],
)
def test_dead_letter_reasons_are_said_in_words(
    headers: dict[str, Any] | None, options: dict[str, Any], expected: str
) -> None:
    assert dead_letter_reason(headers, options) == expected


records = st.lists(
    st.fixed_dictionaries({"label": st.integers(0, 1000), "area": st.floats(0, 1e6)}),
    max_size=5,
)


@given(per_task=st.lists(records, min_size=2, max_size=5))
def test_aggregating_records_keeps_every_row_tagged_with_its_image(
    per_task: list[list[dict[str, Any]]],
) -> None:
    storage = MemoryStorage()
    tasks = []
    for i, rows in enumerate(per_task):
        meta = artifacts.store(storage, "job1", i, "cells", rows)
        tasks.append((f"img{i}", [meta]))
    value, kind = artifacts.aggregate(storage, tasks, "cells")
    assert kind == "json"
    expected = [{"image_id": f"img{i}", **r} for i, rows in enumerate(per_task) for r in rows]
    assert value == expected


def test_artifact_names_and_values_are_checked() -> None:
    storage = MemoryStorage()
    for bad in ("", "../x", "a/b", "x" * 101, ".hidden"):
        with pytest.raises(InvalidParameter):
            artifacts.store(storage, "job1", 0, bad, {})
    with pytest.raises(InvalidParameter, match="neither JSON-able"):
        artifacts.store(storage, "job1", 0, "obj", object())
    meta = artifacts.store(storage, "job1", 0, "blob", b"\x00")
    with pytest.raises(Conflict):
        artifacts.aggregate(storage, [("a", [meta]), ("b", [meta])], "blob")


def test_a_rerun_overwrites_its_artifact_instead_of_adding_one() -> None:
    storage = MemoryStorage()
    first = artifacts.store(storage, "job1", 3, "stats", {"n": 1})
    second = artifacts.store(storage, "job1", 3, "stats", {"n": 2})
    assert first["key"] == second["key"] == "jobs/job1/tasks/000003/stats.json"
    assert list(storage.list("jobs/job1/")) == [first["key"]]


def test_csv_of_nested_records_encodes_nested_values_as_json() -> None:
    art = artifacts.render([{"a": 1, "b": {"c": 2}}, {"a": 3, "d": [1]}], "json", "csv")
    assert art.body.decode().splitlines() == ["a,b,d", '1,"{""c"":2}",', "3,,[1]"]


class _P(BaseModel):
    x: int = 0


def test_a_kind_name_cannot_be_registered_twice_by_different_handlers() -> None:
    kind = JobKind(name="unit.twice", params=_P, run=lambda job, ctx: None)
    register_kind(kind)
    register_kind(kind)  # the same kind again (a module re-import) is fine
    with pytest.raises(ValueError, match="registered twice"):
        register_kind(JobKind(name="unit.twice", params=_P, run=lambda job, ctx: 1))
    assert JobKinds().get("unit.twice") is kind
    with pytest.raises(InvalidParameter, match="invalid parameters"):
        kind.parse_params({"x": "nope"})


def test_each_process_knows_its_built_in_kinds_and_every_plugin_kind() -> None:
    # given two processes' registries with a built-in kind built for each
    first = JobKind(name="unit.builtin", params=_P, run=lambda job, ctx: "first")
    second = JobKind(name="unit.builtin", params=_P, run=lambda job, ctx: "second")
    plugin = register_kind(JobKind(name="unit.plugin", params=_P, run=lambda job, ctx: None))
    a, b = JobKinds([first]), JobKinds([second])
    # then each runs its own built-in kind, and both see the plugin's
    assert a.get("unit.builtin") is first and b.get("unit.builtin") is second
    assert a.get("unit.plugin") is plugin is b.get("unit.plugin")
    assert "unit.builtin" in a.names() and "unit.plugin" in a.names()
    assert {"name": "unit.builtin", "queue": "transform"}.items() <= a.catalogue()[
        a.names().index("unit.builtin")
    ].items()


def test_an_unknown_kind_is_a_422_that_lists_the_known_ones() -> None:
    kinds = JobKinds([JobKind(name="unit.known", params=_P, run=lambda job, ctx: None)])
    with pytest.raises(InvalidParameter, match="unknown job kind 'nope'") as raised:
        kinds.get("nope")
    assert raised.value.status == 422
    assert "unit.known" in raised.value.extra["known"]


def test_a_failing_listener_of_ended_jobs_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished, heard = FinishedJobs(), []

    def broken(job: Any) -> None:
        raise RuntimeError("the metadata DB is gone")

    finished.subscribe(broken)
    finished.subscribe(lambda job: heard.append(job.id))
    finished.publish(SimpleNamespace(id="j1"))  # type: ignore[arg-type]
    assert heard == ["j1"]
    assert "after job j1 ended" in caplog.text and "the metadata DB is gone" in caplog.text


def test_batch_listeners_hear_every_ended_job_once_off_the_task_thread() -> None:
    # given a batch listener that is slow (a look-up in the database, say)
    finished = FinishedJobs(batch_window_s=0.01)
    batches: list[list[str]] = []
    threads: set[str] = set()

    def listener(jobs: list[Any]) -> None:
        threads.add(threading.current_thread().name)
        batches.append([job.id for job in jobs])
        time.sleep(0.02)

    finished.subscribe_batch(listener)
    # when 50 jobs end one after another and the job system closes
    for n in range(50):
        finished.publish(SimpleNamespace(id=f"j{n}"))  # type: ignore[arg-type]
    finished.close()
    # then the listener heard each job once, in order, in fewer calls than jobs, and
    # never on the thread that ended them
    assert [job for batch in batches for job in batch] == [f"j{n}" for n in range(50)]
    assert len(batches) < 50
    assert threading.current_thread().name not in threads


def _waiting_idle(thread: threading.Thread) -> bool:
    """Whether the batch thread sleeps in its wait for new jobs: the plain
    ``Condition.wait()`` its loop calls itself (the batch window waits through
    ``wait_for``)."""
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None and frame.f_back is not None:
        if frame.f_back.f_code.co_name == "_deliver_loop":
            return frame.f_code.co_name == "wait"
        frame = frame.f_back
    return False


def test_closing_ends_the_batch_thread_once_it_is_idle() -> None:
    # given a batch thread that delivered its jobs and now waits, idle, for more
    finished = FinishedJobs(batch_window_s=0.01)
    heard: list[str] = []
    finished.subscribe_batch(lambda jobs: heard.extend(job.id for job in jobs))
    finished.publish(SimpleNamespace(id="j1"))  # type: ignore[arg-type]
    thread = finished._thread
    assert thread is not None
    for _ in range(500):  # until it waits with nothing pending (not in its batch window)
        if heard and _waiting_idle(thread):
            break
        time.sleep(0.01)
    assert _waiting_idle(thread)
    # when the job system closes (a join that gives up after a minute, were it stuck)
    finished.close(timeout_s=60)
    # then the thread has ended, rather than sleeping on until the process exits
    assert heard == ["j1"]
    assert not thread.is_alive()


def test_one_input_aggregates_to_the_same_shape_as_many() -> None:
    # the results of a one-image job have the image_id column a batch's have
    storage = MemoryStorage()
    import pyarrow as pa

    rows = artifacts.store(storage, "job1", 0, "objects", [{"label": 1}, {"label": 2}])
    summary = artifacts.store(storage, "job1", 0, "summary", {"object_count": 2})
    table = artifacts.store(storage, "job1", 0, "table", pa.table({"area": [3.0]}))
    blob = artifacts.store(storage, "job1", 0, "blob", b"\x00")
    tasks = [("img0", [rows, summary, table, blob])]
    assert artifacts.aggregate(storage, tasks, "objects") == (
        [{"image_id": "img0", "label": 1}, {"image_id": "img0", "label": 2}],
        "json",
    )
    assert artifacts.aggregate(storage, tasks, "summary") == (
        [{"image_id": "img0", "object_count": 2}],
        "json",
    )
    value, kind = artifacts.aggregate(storage, tasks, "table")
    assert kind == "arrow" and value.to_pylist() == [{"area": 3.0, "image_id": "img0"}]
    # a binary one, and one of a job without input images, are served as stored
    assert artifacts.aggregate(storage, tasks, "blob") == (b"\x00", "bytes")
    assert artifacts.aggregate(storage, [(None, [summary])], "summary") == (
        {"object_count": 2},
        "json",
    )
