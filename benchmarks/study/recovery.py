"""Experiment c: recovery. Open-loop load (renders + flip jobs) on the distributed system
(2 gateways behind HAProxy, 2 workers); ``kill -9`` one worker a third of the way in, one
gateway two thirds in. Reported: completions per second over time, time back to the
offered rate after each kill, requests failed, and jobs lost (accepted with 202 but not
succeeded once the system is idle again) — which must be 0."""

from __future__ import annotations

import argparse
import math
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from benchmarks._harness.procs import tree
from benchmarks.study import openloop, report, scenarios, systems
from benchmarks.study.common import RUN, headers, prepare

RATE = 30.0  # requests/s offered: well under the 2-core machine's capacity


def _targets(system: systems.System) -> list[tuple[str, Callable[[], int]]]:
    """What to kill -9: a worker then a gateway; in the monolith, one server process of
    ``pixelmill up`` then another (its supervisor restarts them)."""
    if system.workers:
        return [
            ("worker", lambda: systems.kill9(system.workers[0])),
            ("gateway", lambda: systems.kill9(system.gateways[0])),
        ]

    def child() -> int:
        root = system.gateways[0].proc.pid
        pids = [p for p in tree(root) if p != root and b"resource_tracker" not in _cmd(p)]
        os.kill(pids[0], signal.SIGKILL)
        return pids[0]

    return [("server process", child), ("server process", child)]


def _cmd(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _killer(
    targets: list[tuple[str, Callable[[], int]]],
    at: list[float],
    t0: list[float],
    log: list[tuple[str, float]],
) -> threading.Thread:
    """Kill each of ``targets`` ``at`` s after the run's start (``t0``, once set) and log
    (name, s after the start of its signal)."""

    def run() -> None:
        while not t0:
            time.sleep(0.01)
        for (name, kill), when in zip(targets, at, strict=True):
            time.sleep(max(0.0, t0[0] + when - time.perf_counter()))
            # the time of the signal: kill() also waits for the process to be reaped
            signalled = time.perf_counter() - t0[0]
            kill()
            log.append((name, signalled))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _mix(fx: scenarios.Fixture) -> openloop.Request:
    render, flip = scenarios.render(fx, 0.8), scenarios.job(fx, "flip")

    async def request(client: Any) -> tuple[str, int]:
        return await (flip if fx.rng.random() < 0.5 else render)(client)

    return request


def _recovered(samples: list[openloop.Sample], kill_at: float, seconds: float) -> float | None:
    """Seconds from the kill to the first 1-s window, at or after it, whose successful
    completions reach 95 % of the requests offered in it."""
    t = kill_at
    while t + 1 <= seconds:
        offered = sum(1 for s in samples if t <= s.intended < t + 1)
        done = sum(1 for s in samples if t <= s.ended < t + 1 and s.status and s.status < 400)
        if offered and done >= 0.95 * offered:
            return t - kill_at
        t += 0.25
    return None


def _per_second(samples: list[openloop.Sample], seconds: float) -> list[dict[str, Any]]:
    """One row per second of the run (``t`` < ``seconds``; none for the drain after it):
    the requests completed OK in it, and the rate offered (pro rata in a last part-second)."""
    done = Counter(int(s.ended) for s in samples if s.status and s.status < 400)
    return [
        {"second": t, "completed": done.get(t, 0), "offered": RATE * min(1.0, seconds - t)}
        for t in range(math.ceil(seconds))
    ]


def _failed_after(
    samples: list[openloop.Sample], kills: list[tuple[str, float]], window: float = 5.0
) -> list[int]:
    """Per kill, the requests meant to start in the ``window`` s after it that failed,
    up to the next kill: a failure after the next kill is that kill's."""
    ends = [at for _, at in kills[1:]] + [math.inf]
    return [
        sum(
            1
            for s in samples
            if at <= s.intended < min(at + window, end) and not (s.status and s.status < 400)
        )
        for (_, at), end in zip(kills, ends, strict=True)
    ]


def exp_c(args: argparse.Namespace) -> dict[str, Any]:
    seconds = max(args.seconds * 5, 15.0)
    why = systems.broker_down()
    system = systems.embedded(RUN, 2) if why else systems.distributed(RUN, 2, 2, 4, "transform")
    try:
        fx = prepare(system, study=False)
        since = systems.job_marker()
        times = openloop.schedule([(RATE, seconds)], poisson=True, seed=2)
        t0: list[float] = []
        kills: list[tuple[str, float]] = []
        killer = _killer(_targets(system), [seconds / 3, 2 * seconds / 3], t0, kills)
        request = _mix(fx)

        async def timed(client: Any) -> tuple[str, int]:
            if not t0:
                t0.append(time.perf_counter())
            return await request(client)

        result = openloop.drive(system.url, times, timed, headers=headers(system), timeout=30)
        killer.join(timeout=5)
        result.write_csv(report.raw_path("c-recovery"))
        accepted = sum(1 for s in result.samples if s.scenario == "flip" and s.status == 202)
        state = _wait_idle(system.db_url, since, 90)
    finally:
        system.close()
    note = f"Distributed system skipped ({why}): the monolith instead. " if why else ""
    return _report(args, result, kills, accepted, state, seconds, note + _setup(system))


def _setup(system: systems.System) -> str:
    if system.workers:
        return (
            "2 gateways behind HAProxy (health check every 500 ms, `retries 2`, `option redispatch`), "
            "2 workers x 4 threads; nothing restarts the killed processes."
        )
    return "`pixelmill up` with 2 server processes (jobs run inside them; its supervisor restarts a dead one)."


def _wait_idle(db_url: str, since: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = systems.jobs_state(db_url, since)
        busy = state["states"].get("queued", 0) + state["states"].get("running", 0)
        if busy == 0 or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def _report(
    args: argparse.Namespace,
    result: openloop.Result,
    kills: list[tuple[str, float]],
    accepted: int,
    state: dict[str, Any],
    seconds: float,
    setup: str,
) -> dict[str, Any]:
    succeeded = state["states"].get("succeeded", 0)
    rows = _per_second(result.samples, seconds)
    report.write_csv("c_recovery", rows)
    fig, ax = report.figure()
    ax.plot(
        [r["second"] for r in rows], [r["completed"] for r in rows], "o-", label="completed OK / s"
    )
    ax.axhline(RATE, ls=":", c="grey", label="offered")
    for name, at in kills:
        ax.axvline(at, c="red", ls="--")
        ax.text(at, RATE * 0.2, f" kill -9 {name}", color="red")
    ax.set(xlabel="s", ylabel="requests / s")
    ax.set_title("c. recovery: kill -9 a worker, then a gateway")
    ax.legend()
    plot = report.save_plot(fig, "c_recovery")
    lines = []
    for (name, at), failed in zip(kills, _failed_after(result.samples, kills), strict=True):
        back = _recovered(result.samples, at, seconds)
        lines.append(
            f"| {name} | {at:.1f} s | {'not within the run' if back is None else f'{back:.2f} s'} | {failed} |"
        )
    lost = accepted - succeeded
    body = (
        f"{RATE:g} requests/s offered (Poisson, half renders at hit ratio 0.8, half flip jobs), "
        f"{seconds:g} s. {setup}\n\n"
        "| killed | at | back to the offered rate | requests failed in the 5 s after (until the next kill) |\n|---|---|---|---|\n"
        + "\n".join(lines)
        + f"\n\n**Requests failed in the whole run: {result.failed()} of {len(result.samples)}. "
        f"Jobs accepted (202): {accepted}; succeeded: {succeeded}; other states: "
        f"{ {k: v for k, v in state['states'].items() if k != 'succeeded'} }; **jobs lost: {lost}**.**\n\n"
        f"![recovery]({plot})\n"
    )
    report.update_page(
        "c",
        "c. Recovery after kill -9",
        body,
        "python -m benchmarks.study.experiments c" + (" --quick" if args.quick else ""),
    )
    return {"lost": lost, "failed": result.failed(), "kills": kills}
