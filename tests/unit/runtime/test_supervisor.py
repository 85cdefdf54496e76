"""The worker supervisor: a killed worker process is started again by itself, and a
worker that keeps crashing is restarted with a growing backoff."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pixelmill.runtime.supervisor import WorkerSupervisor, backoff_s, die_with_parent

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _until(check: Callable[[], bool], limit_s: float = 15) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead, whatever kill says
        return stat.read().split()[2] != "Z"


def test_a_killed_worker_is_restarted() -> None:
    workers = [subprocess.Popen(SLEEPER, preexec_fn=die_with_parent) for _ in range(2)]
    restarted: list[int] = []
    supervisor = WorkerSupervisor(
        SLEEPER,
        [w.pid for w in workers],
        min_backoff_s=0.05,
        poll_s=0.05,
        on_restart=lambda _index, pid: restarted.append(pid),
    ).start()
    try:
        # when one worker is killed
        victim, survivor = workers[0].pid, workers[1].pid
        os.kill(victim, signal.SIGKILL)
        # then a new worker takes its place and the other one is left alone
        _until(lambda: len(restarted) == 1 and _alive(restarted[0]))
        assert sorted(supervisor.pids()) == sorted([restarted[0], survivor])
        assert victim not in supervisor.pids()
        assert _alive(survivor)
    finally:
        supervisor.stop(timeout_s=5)
    # and stopping the supervisor stops every worker it keeps
    assert not any(_alive(pid) for pid in [*restarted, workers[1].pid])


def test_a_crash_looping_worker_is_restarted_with_growing_backoff() -> None:
    crasher = [sys.executable, "-c", "raise SystemExit(3)"]
    first = subprocess.Popen(crasher)
    supervisor = WorkerSupervisor(
        crasher, [first.pid], min_backoff_s=0.05, max_backoff_s=0.4, poll_s=0.02
    ).start()
    try:
        _until(lambda: supervisor.restarts >= 4)
    finally:
        supervisor.stop(timeout_s=5)
    # the waits double per quick crash, capped
    assert [backoff_s(n, min_s=0.05, max_s=0.4) for n in range(1, 6)] == [
        0.05,
        0.1,
        0.2,
        0.4,
        0.4,
    ]


#: a worker that says when it is ready, and drains on SIGTERM: it finishes its "task"
#: (writes a file) before it exits
DRAINER = [
    sys.executable,
    "-c",
    "import os, signal, sys, time\n"
    "def drain(*_):\n"
    "    time.sleep(0.5); open(sys.argv[1] + '/drained', 'a').write('finished'); sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, drain)\n"
    "open(f'{sys.argv[1]}/ready-{os.getpid()}', 'w').close()\n"
    "while True: time.sleep(0.05)\n",
]


def test_resize_starts_workers_and_drains_the_surplus_without_restarting_it(
    tmp_path: Path,
) -> None:
    supervisor = WorkerSupervisor([*DRAINER, str(tmp_path)], [], poll_s=0.05).start()
    try:
        # when it is asked for 3 workers, then for 1
        supervisor.resize(3)
        _until(lambda: len(list(tmp_path.glob("ready-*"))) == 3)
        assert supervisor.size() == (3, 3)
        first = supervisor.pids()
        supervisor.resize(1)
        # then 2 are told to drain at once: they count no more, yet finish before exiting
        assert supervisor.size()[0] == 1
        _until(lambda: len(supervisor.pids()) == 1)
        assert (tmp_path / "drained").read_text() == "finished" * 2
        # and a drained worker is not started again
        time.sleep(0.3)
        assert supervisor.size() == (1, 1) and supervisor.pids()[0] in first
    finally:
        supervisor.stop(timeout_s=5)
