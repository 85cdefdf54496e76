"""A worker's signals: SIGTERM stops it whichever thread takes the signal and whatever
the main thread is doing in its wait (both once left the worker running forever),
and SIGUSR1 dumps every thread's stack without stopping it.

Each story runs in a child process: signals and handlers are per process, and a
regression must hang the child (killed at the bound), never the test run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pixelmill

SRC = Path(pixelmill.__file__).resolve().parents[1]

PRELUDE = """
import os, signal, sys, threading, time
from pixelmill.runtime.signals import dump_stacks_on, stop_on_signals

stop = threading.Event()
stop_on_signals(stop)
dump_stacks_on(signal.SIGUSR1)
"""


def run_child(body: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + body], env=env, capture_output=True, text=True, timeout=60
    )


def test_sigterm_taken_by_another_thread_stops_a_main_thread_parked_in_its_wait() -> None:
    # given the main thread parked in stop.wait() (blocked in C: no bytecode runs, so
    # no Python-level handler can), and SIGTERM taken by another thread
    body = """
import linecache
main = threading.main_thread().ident

def parked():  # in stop.wait(), at `waiter.acquire()`: no bytecode left before it blocks
    frame = sys._current_frames()[main]
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    return (frame.f_code is threading.Condition.wait.__code__ and "waiter.acquire()" in line
            and frame.f_back.f_locals.get("self") is stop)

def sigterm_once_main_is_parked():
    while not parked():
        time.sleep(0.01)
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

threading.Thread(target=sigterm_once_main_is_parked, daemon=True).start()
stop.wait()
print("stopped")
"""
    # when it runs; then it stops and exits (a handler calling stop.set() hangs here)
    child = run_child(body)
    assert (child.returncode, child.stdout.strip()) == (0, "stopped"), child.stderr


def test_sigterm_while_the_main_thread_enters_its_wait_still_stops_the_process() -> None:
    # given SIGTERM arriving as the main thread enters stop.wait(): inside
    # Condition.wait, holding the event's non-reentrant lock (the tracer sends it then)
    body = """
def sigterm_inside_wait(frame, event, arg):
    if event == "call" and frame.f_code is threading.Condition.wait.__code__:
        sys.settrace(None)
        os.kill(os.getpid(), signal.SIGTERM)

sys.settrace(sigterm_inside_wait)
stop.wait()
print("stopped")
"""
    # when it runs; then it stops and exits (a handler calling stop.set() deadlocks)
    child = run_child(body)
    assert (child.returncode, child.stdout.strip()) == (0, "stopped"), child.stderr


def test_sigusr1_writes_every_threads_stack_and_the_process_carries_on() -> None:
    # given a process with a second thread waiting on the stop event
    body = """
helper = threading.Thread(target=stop.wait, name="helper", daemon=True)
helper.start()
# when it gets SIGUSR1, then SIGTERM
os.kill(os.getpid(), signal.SIGUSR1)
print("still running", flush=True)
os.kill(os.getpid(), signal.SIGTERM)
stop.wait()
helper.join()
print("stopped")
"""
    child = run_child(body)
    # then both threads' stacks are on stderr, and it went on to stop normally
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["still", "running", "stopped"]
    assert child.stderr.count("(most recent call first)") >= 2, child.stderr
    assert "Current thread" in child.stderr
