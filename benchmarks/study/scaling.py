"""Experiment d: scalability. Segmentation-preset jobs (``nuclei-fluorescence`` on a
256x256 image) drained by 1, 2, 3, 4 worker processes (2 threads each), each beside the bare Dramatiq
+ RabbitMQ floor doing the same work with as many processes (:mod:`.floor`), and renders
through 1 and 2 gateways behind HAProxy; speedup, efficiency, a Universal Scalability
Law fit (sigma, κ) with its extrapolation, and the cost model of docs/load-study.md (item 4)
computed from the measured CPU per request and per job."""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

from benchmarks._harness.procs import CORES
from benchmarks.study import floor, models, openloop, report, scenarios, systems
from benchmarks.study.common import RUN, headers, images, measured, prepare

WORKERS = [1, 2, 3, 4]
THREADS = 2


def _drain(system: systems.System, fx: scenarios.Fixture, jobs: int) -> dict[str, Any]:
    """Submit ``jobs`` preset jobs at 300/s (open loop), wait for all: jobs/s from the
    first ``created_at`` to the last ``finished_at``, CPU ms per job of our processes."""
    since = systems.job_marker()
    times = openloop.schedule([(300.0, jobs / 300.0)])
    request = scenarios.job(fx, "job")

    def run() -> openloop.Result:
        result = openloop.drive(system.url, times, request, headers=headers(system))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            state = systems.jobs_state(system.db_url, since)
            if state["states"].get("queued", 0) + state["states"].get("running", 0) == 0:
                break
            time.sleep(0.2)
        return result

    result, _, cpu = measured(system.pids, run)
    state = systems.jobs_state(system.db_url, since)
    done = state["states"].get("succeeded", 0)
    span = (state["last"] - state["first"]).total_seconds() if done else math.inf
    return {
        "jobs_per_s": done / span,
        "succeeded": done,
        "failed_submits": result.failed(),
        "cpu_ms_per_job": cpu * 1000 / max(done, 1),
    }


def _embedded(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Renders (closed loop, 8 clients, misses) on ``pixelmill up`` with 1, 2, 4 processes."""
    out = []
    for n in (1, 2, 4):
        system = systems.embedded(RUN, n)
        try:
            fx = prepare(system, study=False)
            request = scenarios.render(fx, 0.0)
            result, _, cpu = measured(
                system.pids,
                lambda s=system, r=request: openloop.closed(
                    s.url, r, 8, args.seconds, headers=headers(s)
                ),
            )
        finally:
            system.close()
        rps = result.summary()["throughput_rps"]
        out.append(
            {
                "axis": "embedded processes",
                "n": n,
                "renders_per_s": rps,
                "cpu_ms_per_render": cpu * 1000 / max(result.ok(), 1),
            }
        )
        print(f"d embedded processes={n} {rps:.1f} renders/s", flush=True)
    return out


def exp_d(args: argparse.Namespace) -> dict[str, Any]:
    rows = _embedded(args)
    why = systems.broker_down()
    if why:
        return _report(args, rows, f"Distributed rows skipped: {why}.")
    jobs = 60 if args.quick else 240
    png = images()[2]
    system = systems.distributed(RUN, 1, 0, THREADS, "analyse")
    try:
        fx = prepare(system, study=False)
        assert system.platform is not None
        for n in WORKERS:
            system.workers += systems.add_workers(
                system.platform, n - len(system.workers), THREADS, "analyse"
            )
            _drain(system, fx, 6)  # warm: imports, connections
            row = {"axis": "workers", "n": n, **_drain(system, fx, jobs)}
            bare = {"axis": "floor workers", "n": n, **floor.drain(n, THREADS, jobs, png)}
            row["vs_floor"] = row["jobs_per_s"] / bare["jobs_per_s"]
            rows += [row, bare]
            print(
                f"d workers={n} {row['jobs_per_s']:.1f} jobs/s, "
                f"floor {bare['jobs_per_s']:.1f} ({row['vs_floor']:.2f}x)",
                flush=True,
            )
        rows += _gateways(system, fx, args)
    finally:
        system.close()
    return _report(args, rows)


def _gateways(
    system: systems.System, fx: scenarios.Fixture, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Renders (closed loop, 8 clients, misses) through 1, then 2 gateways behind HAProxy."""
    assert system.platform is not None
    for w in system.workers:  # the renders need the cores, not idle workers
        w.stop()
    system.workers = []
    out = []
    request = scenarios.render(fx, 0.0)
    for n in (1, 2):
        if n == 2:
            system.gateways.append(system.platform.gateway("gateway-1"))
            for lb in system.extra:
                lb.stop()
            system.extra = [systems._haproxy(RUN, system.gateways)]
            system.url = system.extra[0].url
        result, _, cpu = measured(
            system.pids,
            lambda: openloop.closed(system.url, request, 8, args.seconds, headers=headers(system)),
        )
        out.append(
            {
                "axis": "gateways",
                "n": n,
                "renders_per_s": result.summary()["throughput_rps"],
                "cpu_ms_per_render": cpu * 1000 / max(result.ok(), 1),
            }
        )
        print(f"d gateways={n} {out[-1]['renders_per_s']:.1f} renders/s", flush=True)
    return out


def _report(args: argparse.Namespace, rows: list[dict[str, Any]], note: str = "") -> dict[str, Any]:
    workers = [r for r in rows if r["axis"] == "workers"]
    metric, unit = "jobs_per_s", "jobs / s"
    if not workers:  # no broker: fit the embedded render processes instead
        workers = [r for r in rows if r["axis"] == "embedded processes"]
        metric, unit = "renders_per_s", "renders / s"
    for r in workers:
        r["speedup"] = r[metric] / workers[0][metric]
        r["efficiency"] = r["speedup"] / r["n"]
    fit = models.fit_usl([r["n"] for r in workers], [r[metric] for r in workers])
    report.write_csv("d_scalability", rows)
    fig, ax = report.figure()
    ax.plot(
        [r["n"] for r in workers],
        [r[metric] for r in workers],
        "o",
        label=f"measured ({workers[0]['axis']})",
    )
    xs = [n / 4 for n in range(4, 65)]
    ax.plot(
        xs,
        [fit.throughput(n) for n in xs],
        "-",
        label=f"USL sigma={fit.sigma:.3f} κ={fit.kappa:.4f}",
    )
    ax.plot(xs, [fit.lam * n for n in xs], ":", c="grey", label="linear")
    floors = [r for r in rows if r["axis"] == "floor workers"]
    if floors:
        ax.plot(
            [r["n"] for r in floors],
            [r["jobs_per_s"] for r in floors],
            "x",
            label="bare Dramatiq + RabbitMQ floor, same preset",
        )
    top = max(r[metric] for r in workers + floors)
    ax.set(xlabel="processes", ylabel=unit, ylim=(0, top * 2.5))
    ax.set_title(f"d. scalability: {workers[0]['axis']} ({CORES} cores)")
    ax.legend()
    plot = report.save_plot(fig, "d_scalability")
    peak = fit.peak_n()
    extra = ", ".join(f"{n}: {fit.throughput(n):.0f}" for n in (8, 16, 32, 64))
    if floors:
        ratios = ", ".join(f"{r['n']}: **{r['vs_floor']:.2f}x**" for r in workers)
        note += (
            "The same preset on the same image through the bare Dramatiq + RabbitMQ floor "
            "(`benchmarks/study/floor.py`: same worker processes and threads, quorum queue, "
            "confirms, ack after the work; no HTTP, database, events or stored results), "
            f"drained right after each row: pixelmill's jobs/s over the floor's by workers — {ratios}."
        )
    body = (
        f"{note}\n\nUSL fit over the {workers[0]['axis']} points ({unit}): λ = {fit.lam:.1f}, **sigma = {fit.sigma:.3f}, κ = {fit.kappa:.4f}**, "
        f"peak at n* = {'none (κ = 0)' if math.isinf(peak) or peak > 1e4 else f'{peak:.1f}'}; extrapolated at n = {extra}. "
        f"On {CORES} cores every process past the second shares the cores: the fit describes this box "
        "(contention for cores included), not N separate machines.\n\n"
        f"![scalability]({plot})\n\n"
        + report.table(
            rows,
            [
                "axis",
                "n",
                "jobs_per_s",
                "speedup",
                "efficiency",
                "cpu_ms_per_job",
                "vs_floor",
                "renders_per_s",
                "cpu_ms_per_render",
            ],
        )
    )
    report.update_page(
        "d",
        "d. Scalability: workers and gateways, USL fit",
        body,
        "python -m benchmarks.study.experiments d" + (" --quick" if args.quick else ""),
    )
    from benchmarks.study import cost

    cost.update(fit, rows)
    return {"fit": fit, "rows": rows}
