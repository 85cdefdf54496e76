"""Experiments a, b and e: throughput against concurrency (saturation), latency
percentiles against offered load (open loop), and the papers' monolith-vs-microservices
figure — embedded, distributed and thumbor (render) in the same run."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks._harness.procs import CORES, cpu_seconds, tree
from benchmarks.study import models, openloop, report, scenarios, systems
from benchmarks.study.common import RUN, headers, images, measured, prepare

USERS = [1, 2, 4, 8, 16]
LOADS = [0.25, 0.5, 0.75, 0.9, 1.1]  # x the embedded system's saturated render rate


@contextmanager
def started(name: str) -> Iterator[tuple[systems.System, scenarios.Fixture]]:
    """``embedded`` (2 gateway processes) or ``distributed`` (2 gateways behind HAProxy,
    1 worker on every queue), with the fixture uploaded."""
    if name == "embedded":
        system = systems.embedded(RUN, CORES)
    elif name == "distributed-no-broker":
        system = systems.distributed(RUN, 2, 0, broker=False)
    else:
        system = systems.distributed(RUN, 2, 1, 4, "transform,analyse,segment")
    try:
        yield system, prepare(system)
    finally:
        system.close()


@contextmanager
def peer() -> Iterator[tuple[systems.System | None, scenarios.Fixture]]:
    path, _, _ = images()
    server = systems.thumbor(RUN, path.parent)
    fx = scenarios.Fixture("", path.name, "")
    if server is None:
        yield None, fx
        return
    try:
        yield systems.System("thumbor", server.url, "", "", [server]), fx
    finally:
        server.stop()


def _row(system: str, x_name: str, x: float, result: openloop.Result, cpu: float) -> dict[str, Any]:
    summary = result.summary()
    ok = max(result.ok(), 1)
    return {"system": system, x_name: x, **summary, "cpu_ms_per_request": cpu * 1000 / ok}


SKIPPED: list[str] = []


def _by_system(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """``rows`` grouped by their ``system``, systems in name order, rows in their order."""
    return [(n, [r for r in rows if r["system"] == n]) for n in sorted({r["system"] for r in rows})]


def names() -> list[str]:
    """embedded, and distributed when its broker and database answer (else noted)."""
    why = systems.broker_down()
    if why:
        SKIPPED.append(
            f"distributed (with workers) skipped: {why}; measured instead: 2 gateways behind "
            "HAProxy on PostgreSQL + Redis running jobs in-process (distributed-no-broker)"
        )
        print(SKIPPED[-1], flush=True)
        return ["embedded", "distributed-no-broker"]
    return ["embedded", "distributed"]


def skipped() -> str:
    return ("\n\n**" + "; ".join(sorted(set(SKIPPED))) + ".**\n") if SKIPPED else ""


def _each(
    run: Callable[[systems.System, scenarios.Fixture, bool], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in names():
        with started(name) as (system, fx):
            rows += run(system, fx, False)
    with peer() as (thumbor, fx):
        if thumbor is not None:
            rows += run(thumbor, fx, True)
    return rows


def exp_a(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Closed-loop render clients 1..16: requests/s and CPU per request of each system."""

    def run(system: systems.System, fx: scenarios.Fixture, is_peer: bool) -> list[dict[str, Any]]:
        request = scenarios.render(fx, 0.0 if is_peer else args.hit_ratio, peer=is_peer)
        out = []
        for users in USERS:
            result, _, cpu = measured(
                system.pids,
                lambda u=users: openloop.closed(
                    system.url,
                    request,
                    u,
                    args.seconds,
                    headers=headers(system) if system.key else None,
                ),
            )
            out.append(_row(system.name, "users", users, result, cpu))
            print(
                f"a {system.name:12} users={users:<3} {out[-1]['throughput_rps']:8.1f} req/s",
                flush=True,
            )
        return out

    rows = _each(run)
    report.write_csv("a_throughput", rows)
    fig, ax = report.figure()
    for name, mine in _by_system(rows):
        ax.plot([r["users"] for r in mine], [r["throughput_rps"] for r in mine], "o-", label=name)
    ax.set(xscale="log", xlabel="concurrent clients (closed loop)", ylabel="renders / s")
    ax.set_title(f"a. render throughput vs concurrency (hit ratio {args.hit_ratio:g}; thumbor 0)")
    ax.legend()
    plot = report.save_plot(fig, "a_throughput")
    body = _saturation(rows) + skipped() + f"\n\n![throughput vs concurrency]({plot})\n\n"
    body += report.table(
        rows,
        ["system", "users", "throughput_rps", "p50_ms", "p99_ms", "failed", "cpu_ms_per_request"],
    )
    report.update_page("a", "a. Throughput vs concurrency (render)", body, _command("a", args))
    return rows


def _saturation(rows: list[dict[str, Any]]) -> str:
    lines, best = [], {}
    for name, mine in _by_system(rows):
        top = max(r["throughput_rps"] for r in mine)
        sat = min(r["users"] for r in mine if r["throughput_rps"] >= 0.9 * top)
        best[name] = top
        cpu = min(r["cpu_ms_per_request"] for r in mine if r["users"] == sat)
        lines.append(
            f"* **{name}**: peak {top:.0f} req/s, 90 % of it from {sat} clients; {cpu:.1f} ms CPU per request there"
        )
    if "thumbor" in best:
        for name in ("embedded", "distributed", "distributed-no-broker"):
            if name in best:
                lines.append(f"* **{name} / thumbor peak: {best[name] / best['thumbor']:.2f}x**")
    return "\n".join(lines)


def _command(key: str, args: argparse.Namespace) -> str:
    mode = " --quick" if args.quick else f" --seconds {args.seconds:g}"
    return f"python -m benchmarks.study.experiments {key}{mode}"


def capacity() -> float:
    """The embedded system's saturated render rate from experiment a's CSV (else 100/s)."""
    import csv

    path = report.DOCS / "a_throughput.csv"
    if not path.exists():
        return 100.0
    with path.open() as f:
        rates = [float(r["throughput_rps"]) for r in csv.DictReader(f) if r["system"] == "embedded"]
    return max(rates, default=100.0)


def exp_b(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Open-loop render at fixed rates (fractions of the embedded capacity): p50..p99.9."""
    top = capacity()

    def run(system: systems.System, fx: scenarios.Fixture, is_peer: bool) -> list[dict[str, Any]]:
        request = scenarios.render(fx, 0.0 if is_peer else args.hit_ratio, peer=is_peer)
        out = []
        for load in LOADS:
            rate = top * load
            times = openloop.schedule([(rate, args.seconds)], poisson=True, seed=1)
            result, _, cpu = measured(
                system.pids,
                lambda t=times: openloop.drive(
                    system.url, t, request, headers=headers(system) if system.key else None
                ),
            )
            result.write_csv(report.raw_path(f"b-{system.name}-{rate:.0f}"))
            out.append(_row(system.name, "offered_rps", rate, result, cpu))
            print(f"b {system.name:12} {rate:6.0f}/s p99 {out[-1]['p99_ms']:8.1f} ms", flush=True)
        return out

    rows = _each(run)
    report.write_csv("b_latency", rows)
    fig, ax = report.figure()
    for name, mine in _by_system(rows):
        for q, style in (("p50_ms", "o-"), ("p99_ms", "s--"), ("p99.9_ms", "^:")):
            ax.plot(
                [r["offered_rps"] for r in mine],
                [r[q] for r in mine],
                style,
                label=f"{name} {q[:-3]}",
            )
    ax.set(yscale="log", xlabel="offered renders / s (open loop, Poisson)", ylabel="latency ms")
    ax.set_title("b. latency percentiles vs offered load")
    ax.legend(fontsize=7, ncol=3)
    plot = report.save_plot(fig, "b_latency")
    body = (
        skipped()
        + f"Rates are fractions {LOADS} of the embedded peak of experiment a ({top:.0f}/s). Latency counts from the intended start (no coordinated omission).\n\n![latency]({plot})\n\n"
    )
    body += report.table(
        rows,
        [
            "system",
            "offered_rps",
            "throughput_rps",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "p99.9_ms",
            "failed",
        ],
    )
    report.update_page(
        "b", "b. Latency percentiles vs offered load (render)", body, _command("b", args)
    )
    return rows


E_USERS = [1, 2, 4, 8, 16, 32]
THINK_S = 0.05


def exp_e(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Closed-loop users (think time 50 ms) running the mixed workspace load: mean
    response time against users, monolith vs microservices, the papers' model overlaid."""
    _, _, png = images()
    weights = {"render": 0.6, "workspace": 0.25, "job": 0.1, "upload": 0.05}
    rows: list[dict[str, Any]] = []
    for name in names():
        with started(name) as (system, fx):
            request = scenarios.mixed(fx, weights, 0.8, png)
            for users in E_USERS:
                result, _, cpu = measured(
                    system.pids,
                    lambda u=users, r=request: openloop.closed(
                        system.url,
                        r,
                        u,
                        args.seconds,
                        think_s=THINK_S,
                        headers=headers(system),
                    ),
                )
                row = _row(name, "users", users, result, cpu)
                lat = [s.latency_ms for s in result.samples if s.status and s.status < 400]
                row["mean_ms"] = sum(lat) / max(len(lat), 1)
                bad = Counter(
                    f"{s.scenario} {s.status or s.error}"
                    for s in result.samples
                    if not (s.status and s.status < 400)
                )
                row["failures"] = ", ".join(f"{k} x{v}" for k, v in sorted(bad.items()))
                result.write_csv(report.raw_path(f"e-{name}-{users}"))
                rows.append(row)
                print(f"e {name:12} users={users:<3} mean {row['mean_ms']:8.1f} ms", flush=True)
    report.write_csv("e_monolith_vs_micro", rows)
    body = _figure_e(rows)
    report.update_page(
        "e",
        "e. Monolith (embedded) vs microservices (distributed): response time vs users",
        body,
        _command("e", args),
    )
    return rows


def _figure_e(rows: list[dict[str, Any]]) -> str:
    mono = [r for r in rows if r["system"] == "embedded"]
    micro = [r for r in rows if r["system"].startswith("distributed")] or [
        dict(r, mean_ms=float("nan"), cpu_ms_per_request=float("nan")) for r in mono
    ]
    r0, slope = models.fit_line([r["users"] for r in mono], [r["mean_ms"] for r in mono])
    flat = micro[0]["mean_ms"]
    demand = {
        n: min(r["cpu_ms_per_request"] for r in rs)
        for n, rs in (("embedded", mono), ("distributed", micro))
    }
    fig, ax = report.figure()
    xs = [float(u) for u in E_USERS]
    ax.plot(xs, [r["mean_ms"] for r in mono], "o-", label="embedded (measured)")
    ax.plot(xs, [r["mean_ms"] for r in micro], "s-", label="distributed (measured)")
    ax.plot(
        xs,
        [models.paper_monolith_ms(u, r0, slope) for u in xs],
        "--",
        label="papers' monolith (line fit)",
    )
    ax.plot(
        xs,
        [models.paper_microservices_ms(u, flat) for u in xs],
        ":",
        label="papers' microservices (flat)",
    )
    for n, d in demand.items():
        ax.plot(
            xs,
            [models.response_bound_ms(u, d, CORES, THINK_S * 1000) for u in xs],
            "-.",
            alpha=0.6,
            label=f"response-time law, {n} (D={d:.1f} ms)",
        )
    ax.set(xlabel="concurrent users (think 50 ms)", ylabel="mean response time ms")
    ax.set_title("e. response time vs users: measured, papers' model, queueing bound")
    ax.legend(fontsize=7)
    plot = report.save_plot(fig, "e_monolith_vs_micro")
    ratios = [
        f"{u}: {m['mean_ms'] / d['mean_ms']:.2f}"
        for u, m, d in zip(E_USERS, mono, micro, strict=True)
    ]
    text = (
        f"Papers' monolith line fitted to the embedded points: R = {r0:.1f} + {slope:.2f}·users ms. "
        f"Measured CPU per request: embedded {demand['embedded']:.1f} ms, distributed {demand['distributed']:.1f} ms "
        f"(gateways + workers; RabbitMQ/PostgreSQL/Redis not counted).\n\n"
        f"**Embedded / distributed mean response time by users** (below 1 = the monolith is faster): {', '.join(ratios)}.\n\n"
        f"![monolith vs microservices]({plot})\n\n"
    )
    return (
        skipped()
        + text
        + report.table(
            rows,
            [
                "system",
                "users",
                "mean_ms",
                "p50_ms",
                "p99_ms",
                "throughput_rps",
                "failed",
                "failures",
                "cpu_ms_per_request",
            ],
        )
    )


def cpu_of(pids: list[int]) -> float:
    return sum(cpu_seconds(p) for pid in pids for p in tree(pid))
