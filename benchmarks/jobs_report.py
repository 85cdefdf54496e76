"""The async jobs benchmark's Markdown report and headline (``benchmarks/jobs.py``)."""

from __future__ import annotations

import argparse
import statistics
from typing import Any


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    med = statistics.median
    print(
        f"\nop alone (decode 16x16 PNG, flip, encode): {results['op_ms']:.2f} ms; "
        f"load average (1 min) at start {results['load_average'][0]:.1f}, at the end "
        f"{results['load_average_after'][0]:.1f}; "
        f"{args.reps} rep(s), {args.seconds} s each, {args.threads} threads per worker\n"
    )
    print(
        "| variant | worker processes | jobs/s (median; runs) | CPU ms/job: gateway, "
        "workers, RabbitMQ, PostgreSQL = total | PostgreSQL, all sessions | load |"
    )
    print("|---|---|---|---|---|---|")
    for variant in ("store", "no-output") if results["runs"] else ():
        base = None
        for workers in (1, 2):
            runs = [
                r for r in results["runs"] if r["variant"] == variant and r["workers"] == workers
            ]
            if not runs:  # not asked for (--variants, --workers)
                continue
            rate = med(r["jobs_per_s"] for r in runs)
            base = base or rate
            each = ", ".join(f"{r['jobs_per_s']:.0f}" for r in runs)
            parts = {
                k: med(r["cpu_ms_per_job_by_part"][k] for r in runs)
                for k in ("gateway", "workers", "rabbitmq", "postgres", "total", "postgres_all")
            }
            cpu = (
                f"{parts['gateway']:.2f}, {parts['workers']:.2f}, {parts['rabbitmq']:.2f}, "
                f"{parts['postgres']:.2f} = {parts['total']:.2f}"
            )
            loads = ", ".join(f"{r['load_average']:.1f}" for r in runs)
            print(
                f"| {variant} | {workers} | {rate:.0f} ({each}): {rate / base:.2f}x | {cpu} | "
                f"{parts['postgres_all']:.2f} | {loads} |"
            )
    if results["split"]:
        print("\n| each side alone (store) | worker processes | rate (median) | CPU ms/job |")
        print("|---|---|---|---|")
        split = results["split"]
        sub = med(r["submits_per_s"] for r in split)
        gcpu = med(r["gateway_cpu_ms_per_submit"] for r in split)
        print(f"| gateway, no worker running | 0 | {sub:.0f} submits/s | {gcpu:.2f} (gateway) |")
        for workers in sorted({r["workers"] for r in split}):
            runs = [r for r in split if r["workers"] == workers]
            rate = med(r["drain_jobs_per_s"] for r in runs)
            wcpu = med(r["worker_cpu_ms_per_job"] for r in runs)
            print(
                f"| workers draining that backlog | {workers} | {rate:.0f} jobs/s | "
                f"{wcpu:.2f} (workers) |"
            )
    if results["batch"]:
        print(
            f"\n| batch jobs of {args.batch_inputs} images (store) | worker processes | tasks/s |"
        )
        print("|---|---|---|")
        for workers in sorted({r["workers"] for r in results["batch"]}):
            runs = [r for r in results["batch"] if r["workers"] == workers]
            rate = med(r["tasks_per_s"] for r in runs)
            each = ", ".join(f"{r['tasks_per_s']:.0f}" for r in runs)
            print(f"| one POST per job | {workers} | {rate:.0f} ({each}) |")
    lat = results["latency"]
    if not lat:
        return
    p50 = med(r["enqueue_to_start_p50_ms"] for r in lat)
    p99 = med(r["enqueue_to_start_p99_ms"] for r in lat)
    e2e = med(r["submit_to_succeeded_p50_ms"] for r in lat)
    print(
        f"\nlow load (1 worker, one job every 20 ms): enqueue->start p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms; submit->succeeded p50 {e2e:.1f} ms; "
        f"per-job overhead over the op {e2e - results['op_ms']:.1f} ms"
    )


def headline(results: dict[str, Any]) -> list[str]:
    """Jobs/s end to end per variant with 1 worker, and the low-load latency."""
    med = statistics.median
    lines = []
    for variant, workers in [(v, w) for v in ("store", "no-output") for w in (1, 2)]:
        runs = [r for r in results["runs"] if r["variant"] == variant and r["workers"] == workers]
        if runs:
            lines.append(
                f"{variant}, {workers} worker(s): {med(r['jobs_per_s'] for r in runs):.0f} jobs/s, "
                f"{med(r['cpu_ms_per_job_by_part']['total'] for r in runs):.2f} ms CPU per job"
            )
    if results["latency"]:
        lat = results["latency"]
        e2e = med(r["submit_to_succeeded_p50_ms"] for r in lat)
        lines.append(
            f"low load: enqueue->start p99 {med(r['enqueue_to_start_p99_ms'] for r in lat):.1f} "
            f"ms; per-job overhead over the op {e2e - results['op_ms']:.1f} ms"
        )
    return lines
