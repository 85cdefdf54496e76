"""Experiment c's bookkeeping: when each kill happened, which kill a failure follows,
and the per-second rows of the run."""

import os
import signal
import subprocess
import time

import pytest
from benchmarks.study.openloop import Sample
from benchmarks.study.recovery import RATE, _failed_after, _killer, _per_second


def test_a_kill_is_logged_at_its_signal_not_after_the_process_is_reaped() -> None:
    signalled: list[float] = []
    sleeper = subprocess.Popen(["sleep", "60"])

    def kill() -> int:
        signalled.append(time.perf_counter())
        os.kill(sleeper.pid, signal.SIGKILL)
        sleeper.wait(timeout=10)
        time.sleep(0.5)  # a server's tree takes its time to go (kill9 waits for it)
        return sleeper.pid

    t0 = [time.perf_counter()]
    log: list[tuple[str, float]] = []
    _killer([("worker", kill)], [0.1], t0, log).join(timeout=10)
    assert sleeper.returncode == -signal.SIGKILL
    [(name, at)] = log
    assert name == "worker"
    assert at == pytest.approx(signalled[0] - t0[0], abs=0.02)


def sample(intended: float, status: int) -> Sample:
    return Sample(
        "render", intended=intended, started=intended, ended=intended + 0.1, status=status
    )


def test_a_failure_after_the_gateway_kill_is_the_gateway_kills() -> None:
    kills = [("worker", 5.0), ("gateway", 8.0)]
    samples = [sample(5.5, 200), sample(6.0, 0), sample(8.01, 502), sample(8.2, 0)]
    samples += [sample(9.0, 200), sample(14.0, 503)]
    assert _failed_after(samples, kills) == [1, 2]


def test_the_rows_end_with_the_run() -> None:
    # a 15-s run: seconds 0..14, none at 15 for the requests that completed after it
    samples = [sample(t / 2, 200) for t in range(30)] + [sample(14.95, 200)]
    rows = _per_second(samples, 15.0)
    assert [r["second"] for r in rows] == list(range(15))
    assert rows[-1] == {"second": 14, "completed": 2, "offered": RATE}
    # a part-second at the end is offered pro rata
    assert _per_second(samples, 15.5)[-1]["offered"] == pytest.approx(RATE / 2)
